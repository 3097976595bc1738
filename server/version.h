/* version.h: the server's version, reported by Health/Check and --version. */
#ifndef SENTRA_VERSION_H
#define SENTRA_VERSION_H
#define SENTRA_VERSION "0.1.0"
#endif
