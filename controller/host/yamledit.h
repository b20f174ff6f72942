/*
 * yamledit.h - minimal, byte-exact edits of a YAML file, found with libyaml.
 *
 * The access point upgrade (design.md section 10) edits the vendor's
 * templates in two places only: the top-level `s3` mapping (replaced by the
 * old template's when the vendor's converter refuses the new one) and the
 * scalar `web.darwincdn`. Everything else in the file (other keys, their
 * order, comments, blank lines, quoting) must stay byte for byte as it was,
 * so nothing here re-emits a document: libyaml's parser events give the
 * byte offsets (marks) of the node, and the edit splices raw text there.
 *
 * A path is a dotted list of mapping keys from the document's root, e.g.
 * "s3" or "web.darwincdn" (keys holding a dot cannot be addressed). A file
 * must hold exactly one document whose root is a mapping; a key that occurs
 * twice in one mapping is an error (TQU_YAML_EDUP), never "the first one".
 *
 * Writes go through tqu_write_file_atomic semantics (temporary file, fsync,
 * rename; owner and mode of the original kept). keep_path, when not NULL,
 * receives a copy of the original first (written atomically, never
 * overwritten when it exists already: the first original is the one kept);
 * nothing is changed if that copy cannot be made.
 *
 * Every function returns TQU_YAML_OK or one of the codes below; err (when
 * not NULL and errlen > 0) then holds one line naming the file and the
 * cause, e.g. "template.yaml:12:3: key \"s3\" appears twice".
 *
 * Details (yamledit.c):
 * - Positions in messages are 1-based line:column (columns in characters,
 *   libyaml's); a message never holds a value from the file (s3 holds
 *   credentials), only keys, positions and libyaml's fixed problem texts.
 * - Only the keys of the path are checked for duplicates (in the mappings
 *   the path goes through); the whole stream is parsed, so a syntax error
 *   anywhere is TQU_YAML_EPARSE, and wins over a key found twice or missing.
 *   A path through a scalar, a sequence or an alias is TQU_YAML_ENOTFOUND;
 *   an alias as the node itself is TQU_YAML_EKIND.
 * - UTF-8 only (a UTF-8 byte order mark is fine; UTF-16 is EPARSE); CRLF
 *   line breaks are kept. An alias whose anchor does not come before it is
 *   EPARSE (libyaml's parser lets it through, loaders do not); so is nesting
 *   deeper than 200 levels or more than 4096 anchors.
 * - Before anything is written the edited text is parsed again: the events
 *   outside the node must be the original's and the node must read as
 *   asked, else nothing is written (set_scalar: TQU_YAML_EINVAL;
 *   replace_section: TQU_YAML_EPARSE "does not fit here", e.g. a block
 *   section into a flow root).
 * - A symbolic link at file is followed: its target is rewritten, the link
 *   stays. keep_path equal to file is TQU_YAML_EINVAL; the copy gets the
 *   original's mode and owner. The file is not written if it changed (inode, size, mtime) since
 *   it was read (TQU_YAML_EIO "changed while being edited").
 */
#ifndef TQU_YAMLEDIT_H
#define TQU_YAMLEDIT_H

#include <stddef.h>

enum {
    TQU_YAML_OK = 0,
    TQU_YAML_EIO = 1,        /* cannot read or write a file (errno text in err) */
    TQU_YAML_EPARSE = 2,     /* not YAML, or not one document with a mapping root */
    TQU_YAML_ENOTFOUND = 3,  /* a key of the path is not there */
    TQU_YAML_EDUP = 4,       /* a key of the path appears twice in its mapping */
    TQU_YAML_EKIND = 5,      /* the node is not of the kind asked for (scalar vs collection) */
    TQU_YAML_ETOOBIG = 6,    /* the file is larger than TQU_YAML_MAX_BYTES */
    TQU_YAML_EINVAL = 7,     /* bad argument (empty path, value with a newline, ...) */
    TQU_YAML_ENOMEM = 8,     /* out of memory */
};

#define TQU_YAML_MAX_BYTES (16u << 20)

const char *tqu_yaml_strerror(int rc);

/*
 * Where the value of `path` lies in text[0..len): [*start, *end) covers the
 * node's bytes (for a block collection: from its first line to the end of
 * its last content line, without trailing blank lines or comments that
 * belong to what follows). *is_scalar says which kind it is.
 *
 * Precisely: *start is the node's first byte (its anchor or tag if it has
 * one, else the scalar's first character or quote, a block collection's
 * first key or "-", a flow collection's "{" or "["); an empty value starts
 * and ends just after its key's ":". *end: a scalar's last byte + 1 (a
 * block scalar's last content line, its trailing blank lines excluded); a
 * flow collection's closing bracket + 1; a block collection's last content
 * line, a comment on that line included, its line break excluded. Byte
 * offsets, not characters. Messages name the text "<text>". is_scalar may
 * be NULL.
 */
int tqu_yaml_locate(const char *text, size_t len, const char *path,
                    size_t *start, size_t *end, int *is_scalar,
                    char *err, size_t errlen);

/*
 * The scalar at `path` in file, its value as libyaml reads it (quotes
 * removed), in out (NUL-terminated; TQU_YAML_ETOOBIG if it does not fit).
 */
int tqu_yaml_get_scalar(const char *file, const char *path, char *out, size_t outlen,
                        char *err, size_t errlen);

/*
 * Sets the scalar at `path` in file to value (written plain when plain YAML
 * reads it back unchanged, else double-quoted). Only that scalar's bytes
 * change. *changed (when not NULL) says whether the file was written: a
 * value already equal leaves the file (and keep_path) untouched.
 *
 * "Equal" is the value as libyaml reads it, whatever its quoting ("a" and
 * a are equal). Plain needs: libyaml reads "k: <value>" back as a plain
 * scalar equal to value; no control characters; not a word or number a
 * YAML 1.1 or 1.2 loader types (true, no, ~, null, 8083, 1.5, .inf, <<,
 * anything starting like a number, the empty string); inside a flow
 * collection also none of : , [ ] { } # (older parsers refuse ':' there).
 * So "proxy-pp:8083" is plain in a block mapping, quoted in a flow one.
 * Quoted: "..." with \" \\ \t \xHH \uHHHH escapes. A value with a line
 * break (\n, \r, U+0085/2028/2029) or not UTF-8 is TQU_YAML_EINVAL (found
 * after the node, so the message gives its position). An anchor or tag on
 * the scalar stays; an empty value gets a blank after its ":".
 */
int tqu_yaml_set_scalar(const char *file, const char *path, const char *value,
                        const char *keep_path, int *changed, char *err, size_t errlen);

/*
 * Replaces the top-level key `key` of file, key line and value, with the
 * same key's text from from_file (both must have it, as a top-level key of
 * the root mapping). Only those bytes change; the rest of file stays as it
 * was. *changed as above (equal text: nothing written).
 *
 * The bytes are the key's first character to the end of the value's last
 * content line (tqu_yaml_locate), a comment on that line included, in both
 * files; blank lines and comments after it stay in file. key is one key
 * (a dot in it is part of it). The copy takes file's line breaks (CRLF or
 * LF, from its first line) and, when the key stands at another column in
 * file than in from_file, that indentation (lines after the first moved).
 * from_file is only read.
 */
int tqu_yaml_replace_section(const char *file, const char *from_file, const char *key,
                             const char *keep_path, int *changed, char *err, size_t errlen);

#endif
