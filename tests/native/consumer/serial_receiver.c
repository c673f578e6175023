/* A microcontroller-style receiver: bytes in from stdin, one line per summary out. */
#include <crackseg/serial.h>
#include <stdio.h>

int main(void) {
    crackseg_summary_decoder dec;
    crackseg_summary s;
    int c;
    crackseg_summary_decoder_init(&dec);
    while ((c = getchar()) != EOF) {
        if (crackseg_summary_decoder_push(&dec, (uint8_t)c, &s) == CRACKSEG_SERIAL_SUMMARY) {
            printf("seq=%lu coverage=%u\n", (unsigned long)s.seq, (unsigned)s.coverage_centi_pct);
        }
    }
    return 0;
}
