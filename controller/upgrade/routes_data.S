/* routes_data.S - routes/routes.yaml built into the binary as the default
 * upgrade route table (tqu_routes_builtin, NUL-terminated), so the
 * controller works without a data file beside it. --routes-file replaces
 * it at run time. */
    .section .rodata
    .global tqu_routes_builtin
    .type tqu_routes_builtin, @object
tqu_routes_builtin:
    .incbin "routes/routes.yaml"
    .byte 0
    .global tqu_routes_builtin_end
tqu_routes_builtin_end:
    .section .note.GNU-stack,"",@progbits
