/* remedies_data.S - remedies/remedies.yaml built into the binary as the
 * default key table of TianqingTuning (tqu_remedies_builtin,
 * NUL-terminated). --remedies-file replaces it at run time. */
    .section .rodata
    .global tqu_remedies_builtin
    .type tqu_remedies_builtin, @object
tqu_remedies_builtin:
    .incbin "remedies/remedies.yaml"
    .byte 0
    .global tqu_remedies_builtin_end
tqu_remedies_builtin_end:
    .section .note.GNU-stack,"",@progbits
