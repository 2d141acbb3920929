#ifndef WORDSIZE_H
#define WORDSIZE_H
#include <stddef.h>
#include <stdint.h>

/* 64-bit FNV-1a of a NUL-terminated string. */
unsigned long checksum64(const char *s);
/* Whole days from 2000-01-01 to the given UTC date (year >= 1970). */
long days_since_2000(int year, int month, int day);
/* Decode a little-endian 32-bit length prefix from a byte buffer. */
uint32_t wire_length(const unsigned char *buf);
#endif
