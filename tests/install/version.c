/* Prints the library version: linked statically (tests/install-check.sh). */
#include <stdio.h>
#include <string.h>

#include <sipreg.h>

int main(void) {
    printf("%s\n", sipreg_version());
    return strcmp(sipreg_version(), SIPREG_VERSION) == 0 ? 0 : 1;
}
