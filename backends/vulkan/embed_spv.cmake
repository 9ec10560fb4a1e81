# embed_spv.cmake - cmake -P script: SPIR-V binary -> C array.
#   -DIN=<file.spv> -DOUT=<file.c> -DNAME=<variant>
# Emits  const unsigned char qr_spv_<NAME>[];  const size_t qr_spv_<NAME>_size;
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" n)
math(EXPR nbytes "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," body "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " body "${body}")
file(WRITE "${OUT}" "/* generated from ${IN} by embed_spv.cmake; do not edit */\n#include <stddef.h>\n"
  "const unsigned char qr_spv_${NAME}[] __attribute__((aligned(4))) = {\n    ${body}\n};\n"
  "const size_t qr_spv_${NAME}_size = ${nbytes};\n")
