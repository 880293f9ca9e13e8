/* Safe printing of untrusted text (see text.h). */
#include "text.h"

#include <string.h>

int text_utf8_len(const unsigned char *s)
{
    const unsigned c = s[0];
    if (c < 0x80) return c ? 1 : 0;
    int n;
    unsigned min;
    if (c >= 0xC2 && c <= 0xDF) n = 2, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, min = 0x10000;
    else return 0;
    unsigned cp = c & (0x3F >> (n - 1));
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0; /* also stops at the terminating NUL */
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

void json_string(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    fputc('"', out);
    while (*p) {
        const unsigned c = *p;
        if (c == '"' || c == '\\') {
            fputc('\\', out);
            fputc((int)c, out);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            fprintf(out, "\\u%04x", c);
            p++;
        } else if (c < 0x80) {
            fputc((int)c, out);
            p++;
        } else {
            const int n = text_utf8_len(p);
            if (n) fwrite(p, 1, (size_t)n, out);
            else fputs("\\ufffd", out);
            p += n ? n : 1;
        }
    }
    fputc('"', out);
}

char *text_sanitize(char *buf, size_t size, const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t k = 0;
    if (size < 8) {
        if (size) buf[0] = '\0';
        return buf;
    }
    while (*p) {
        char piece[8];
        size_t len;
        int n = *p >= 0x80 ? text_utf8_len(p) : 0;
        if (*p >= 0x20 && *p < 0x7f) {
            piece[0] = (char)*p;
            len = 1;
            n = 1;
        } else if (n) {
            memcpy(piece, p, (size_t)n);
            len = (size_t)n;
        } else {
            snprintf(piece, sizeof piece, "\\x%02x", *p);
            len = 4;
            n = 1;
        }
        if (k + len + 4 > size) { /* room for "..." and the NUL */
            memcpy(buf + k, "...", 3);
            k += 3;
            break;
        }
        memcpy(buf + k, piece, len);
        k += len;
        p += n;
    }
    buf[k] = '\0';
    return buf;
}

int text_is_name(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        const char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '+' || c == '-'))
            return 0;
    }
    return n >= 1 && n <= 63;
}

int text_is_printable(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) return 0;
    return 1;
}
