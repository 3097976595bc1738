#!/bin/sh
# bin2c.sh NAME FILE: prints a C file defining NAME (bytes) and NAME_len.
set -e
echo "/* Generated from $2 by scripts/bin2c.sh; do not edit. */"
echo "#include <stddef.h>"
echo "const unsigned char $1[] = {"
xxd -i < "$2"
echo "};"
echo "const size_t $1_len = sizeof($1);"
