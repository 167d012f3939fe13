/* Minimal guest for start-up benchmarks. Built both as wasm32-wasi and as a
 * native static binary from this same source. */
#include <stdio.h>

int main(void) {
    fputs("hello from spore (C)\n", stdout);
    return 0;
}
