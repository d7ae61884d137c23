/* The column path of zeek-cut (zeek/zeek auxil/zeek-aux/zeek-cut), for the query benchmark where
 * zeek-cut itself is not packaged: getline per line, the #fields line maps the asked columns,
 * strsep splits each row on tabs, fputs prints the columns (a missing one empty). No header
 * output, no time conversion (the benchmark uses neither).
 *
 *   cc -O2 -o zeek-cut-lite bench/zeek-cut-lite.c && zcat ... | ./zeek-cut-lite ts id.resp_h
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    int ncols = argc - 1, *idx = calloc(ncols ? ncols : 1, sizeof(int)), nfields = 0, i;
    char **fields = NULL, *line = NULL;
    size_t cap = 0;
    ssize_t len;
    for (i = 0; i < ncols; i++) idx[i] = -1;
    while ((len = getline(&line, &cap, stdin)) > 0) {
        if (line[len - 1] == '\n') line[len - 1] = '\0';
        if (line[0] == '#') {
            if (!strncmp(line, "#fields\t", 8)) {
                char *p = line + 8, *f;
                nfields = 0;
                for (i = 0; i < ncols; i++) idx[i] = -1;
                while ((f = strsep(&p, "\t")) != NULL) {
                    for (i = 0; i < ncols; i++)
                        if (!strcmp(f, argv[i + 1])) idx[i] = nfields;
                    nfields++;
                }
                fields = realloc(fields, (nfields + 1) * sizeof(char *));
            }
            continue;
        }
        char *p = line;
        int n = 0;
        while (n < nfields && (fields[n] = strsep(&p, "\t")) != NULL) n++;
        if (n < nfields) continue;
        for (i = 0; i < ncols; i++) {
            if (i) fputc('\t', stdout);
            if (idx[i] >= 0) fputs(fields[idx[i]], stdout);
        }
        fputc('\n', stdout);
    }
    return 0;
}
