/*
 * remedies.c - README's reasons table as data (see remedies.h).
 */
#include "remedies.h"

#include <stddef.h>
#include <string.h>

static const kp_remedy remedies[] = {
    {"InvalidSpec", "Validate",
     "fix the field the message names"},
    {"InvalidWindow", "Validate",
     "fix the field the message names"},
    {"UnsupportedTopology", "Validate",
     "fix the field the message names"},
    {"InvalidVersion", "Validate",
     "fix the field the message names"},
    {"RoutesNotLoaded", "Validate",
     "the route table could not be loaded at start-up (the controller's log says why): fix "
     "--routes-file and restart the controller"},
    {"PathNotAllowed", "Validate (again before use: Preflight, BackupDeployments, PaasCheck, Upgrade, CdnTuning)",
     "the field the message names is outside the allowed roots, or leads out of them "
     "through a symbolic link, or is not a clean absolute path (.., //), or "
     "(cdn.cacheHostPath) is a root itself: point it inside /qaxdata (or another "
     "--allowed-root), or start the controller with --allowed-root for that folder"},
    {"UnsupportedSourceVersion", "Validate",
     "fromVersion is not a supported starting point for toVersion: the vendor upgrades "
     "such environments only on request (TAC)"},
    {"NonStandardInstallation", "Validate",
     "the first installed version is not in the route table: not a standard installation; "
     "ask the vendor (TAC)"},
    {"UnsupportedTargetVersion", "Validate",
     "no route to toVersion in the table: check the version, or load the vendor's newer "
     "table with --routes-file"},
    {"DowngradeOrSameVersion", "Validate",
     "the versions contradict each other: fix them"},
    {"InitialAfterFrom", "Validate",
     "the versions contradict each other: fix them"},
    {"WindowClosed", "Validate, SabreCleanup, Upgrade",
     "the window ended before update.sh could start: agree a new one, set spec.window"},
    {"ConfirmationMissing", "Preflight",
     "the message lists which spec.confirmations are still false and what each means: "
     "check, then set true"},
    {"PackageMissing", "Preflight",
     "copy/extract the release package where the message says, or set spec.packages.archive"},
    {"PackageExtractFailed", "Preflight",
     "the tarball did not extract (message has tar's output): replace it"},
    {"TemplateNotFound", "Preflight",
     "the message lists the templates considered: remove the stray one, or name the right "
     "one in spec.template"},
    {"TemplateAmbiguous", "Preflight",
     "the message lists the templates considered: remove the stray one, or name the right "
     "one in spec.template"},
    {"TemplateUnreadable", "Preflight",
     "the message lists the templates considered: remove the stray one, or name the right "
     "one in spec.template"},
    {"TemplateDirUnreadable", "Preflight",
     "the message lists the templates considered: remove the stray one, or name the right "
     "one in spec.template"},
    {"PathMissing", "Preflight",
     "disk.dataRoot or disk.mongoDataDir does not exist: fix the path"},
    {"InsufficientBackupSpace", "Preflight",
     "free space where the data backup goes (dataBackup.dir) is less than the MongoDB "
     "data: free space, point dataBackup.dir elsewhere, or (if the vendor agrees) "
     "dataBackup.enabled: false"},
    {"DiskUsageTooHigh", "Preflight",
     "used + reserveGiB is over maxUsagePercent of /qaxdata (Docker's image GC would fire "
     "mid-upgrade): free space"},
    {"DiskCheckError", "Preflight",
     "a disk could not be measured: the message says why"},
    {"NodeClockSkew", "Preflight",
     "the named nodes' clocks disagree with the controller's (or they are down): fix "
     "NTP/chrony"},
    {"SshSecretNotFound", "Preflight, Upgrade",
     "create the Secret / add the key / grant get on it (the message has the command)"},
    {"SshSecretKeyMissing", "Preflight, Upgrade",
     "create the Secret / add the key / grant get on it (the message has the command)"},
    {"SshSecretForbidden", "Preflight, Upgrade",
     "create the Secret / add the key / grant get on it (the message has the command)"},
    {"StateDirUnwritable", "any",
     "backupDir cannot be written (full disk, permissions): fix it"},
    {"BackupFailed", "any",
     "backupDir cannot be written (full disk, permissions): fix it"},
    {"PaasCheckFailed", "PaasCheck",
     "components other than es/flink/sabre failed, or es/flink/sabre with EDR in use: "
     "repair them (the message quotes the lines)"},
    {"PaasCheckUnknownFailure", "PaasCheck",
     "darwin-client failed without naming a component: read its output (path in the "
     "message)"},
    {"PaasCheckTimedOut", "PaasCheck",
     "darwin-client hung / could not be started / its output could not be read"},
    {"PaasCheckNotRun", "PaasCheck",
     "darwin-client hung / could not be started / its output could not be read"},
    {"PaasCheckUnreadable", "PaasCheck",
     "darwin-client hung / could not be started / its output could not be read"},
    {"UpdateScriptEditFailed", "PaasCheck",
     "update.sh could not be edited (missing marker, a conflicting --paas.check): check "
     "the package"},
    {"AnotherUpgradeActive", "before PaasCheck",
     "another TianqingUpgrade has started changing the system (its PaasCheck or a later "
     "step began); this one has passed its own checks and starts when that one has "
     "finished (or is deleted). A resource still in Validate or Preflight never holds the "
     "slot, so each shows its own problem"},
    {"UpgradeNotStarted", "Upgrade",
     "update.sh could not be started (message says why)"},
    {"UpgradeFailed", "Upgrade",
     "update.sh exited non-zero: the message has the code and the tail of "
     "install_saas.log; fix the cause with the vendor, then change the spec to retry"},
    {"UpgradeSlow", "Upgrade",
     "update.sh has run past timeouts.upgrade; it is not stopped. Look at "
     "install_saas.log; raise timeouts.upgrade (takes effect at once), or set spec.stop: "
     "true to stop it"},
    {"UpgradeStopped", "Upgrade",
     "update.sh was stopped by spec.stop: true (SIGTERM to its process group, SIGKILL "
     "after a grace period); check the cluster with the vendor; set spec.stop: false to "
     "run the checks and update.sh again"},
    {"StopRequested", "Upgrade",
     "spec.stop is true, so update.sh is not started: set it to false to go on"},
    {"StopFailed", "Upgrade",
     "spec.stop: true is set but update.sh could not be signalled (the message says why, "
     "for example its pid file names a process that is not it); the controller tries again "
     "with backoff and update.sh goes on meanwhile: look at status.upgrade.pid and the state "
     "folder the message names before stopping anything by hand"},
    {"AlreadyLaunched", "Upgrade",
     "another start of update.sh for this generation got there first (its launch marker "
     "exists): nothing was started twice; the next poll follows the run that was started"},
    {"UpgradeTimedOut", "Upgrade",
     "only for an update.sh started by an older controller, which still stopped it at "
     "timeouts.upgrade (this one reports UpgradeSlow instead): check install_saas.log and "
     "the cluster with the vendor, then change the spec to retry"},
    {"LaunchNotRecorded", "Upgrade",
     "the launch could not be recorded in status.launch before update.sh (API unreachable, "
     "or the resource changed meanwhile): nothing was started; it is tried again"},
    {"StateUnreadable", "Upgrade",
     "the request's folder under backupDir (or an upgrade-g<N>/ in it) cannot be listed or "
     "read: update.sh is not started while it cannot be told whether it already was; fix "
     "the folder's permissions or disk"},
    {"Interrupted", "Preflight, PaasCheck",
     "the controller was stopped while tar or darwin-client ran; it was killed and runs "
     "again at the next start (an unfinished extraction's .tqu-extract-* folder is removed "
     "first)"},
    {"UpgradeOutcomeUnknown", "Upgrade",
     "update.sh was started but its result was lost (the machine rebooted, the state "
     "folder was removed, or another controller with another /qaxdata launched it: "
     "status.launch says it was launched and no local record says how it ended): it is "
     "never started again; check install_saas.log and the cluster with the vendor, then "
     "delete this resource"},
    {"CdnDeploymentNotFound", "CdnTuning",
     "check spec.cdn; the message says what is missing (app label, container)"},
    {"CdnDeploymentUnexpected", "CdnTuning",
     "check spec.cdn; the message says what is missing (app label, container)"},
    {"VerifyTimedOut", "Verify",
     "the named Deployments did not become available in timeouts.verify: look at their pods"},
};

const kp_remedy *kp_remedy_find(const char *reason)
{
    const kp_remedy *r = NULL;

    for (size_t i = 0; reason && i < sizeof(remedies) / sizeof(remedies[0]) && !r; i++)
        if (!strcmp(remedies[i].reason, reason))
            r = &remedies[i];
    return r;
}
