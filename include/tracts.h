/*
** tracts.h - public interface of the tracts SQLite extension.
**
** The extension is normally loaded at run time:
**
**     .load ./build/tracts            -- sqlite3 shell
**     SELECT load_extension('./build/tracts');
**     conn.load_extension('./build/tracts')   # Python
**
** A C host that links the extension statically may call the entry point
** itself, exactly as SQLite calls it for a loadable extension.
*/
#ifndef TRACTS_H
#define TRACTS_H

#include <sqlite3.h>

#define TRACTS_VERSION "0.1.0"

#if defined(_WIN32)
#define TRACTS_API __declspec(dllexport)
#else
#define TRACTS_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* Entry point of build/tracts.so; registers every SQL function and module
** on db. Returns SQLITE_OK, or an error code with *pzErrMsg set (the caller
** frees it with sqlite3_free). */
TRACTS_API int sqlite3_tracts_init(sqlite3 *db, char **pzErrMsg,
                                   const struct sqlite3_api_routines *pApi);

#ifdef __cplusplus
}
#endif

#endif /* TRACTS_H */
