/* Runs infra/zabbix/alert-intake.js in Duktape, the engine Zabbix embeds, so
 * that ES5-only syntax is proven: the script is compiled as the body of a
 * function of `value`, as Zabbix does, with stand-ins for Zabbix's objects.
 * Usage: duktape-harness SCRIPT PARAMS_JSON_FILE (curl|http)
 * Prints the script's result, or "ERROR: <what it threw>" and exits 1.
 * The stand-ins POST over plain HTTP/1.0 to 127.0.0.1 (the tests' front). */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "duktape.h"

static char *read_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc(n + 1);
    if (fread(buf, 1, n, f) != (size_t)n) { fclose(f); free(buf); return NULL; }
    buf[n] = 0;
    fclose(f);
    return buf;
}

/* __post(url, headers_text, body) -> [status, response body] */
static duk_ret_t native_post(duk_context *ctx) {
    const char *url = duk_require_string(ctx, 0);
    const char *headers = duk_require_string(ctx, 1);
    duk_size_t body_len;
    const char *body = duk_require_lstring(ctx, 2, &body_len);
    char host[64];
    int port = 80;
    char path[2048] = "/";
    if (sscanf(url, "http://%63[^:/]:%d%2047s", host, &port, path) < 2)
        return duk_error(ctx, DUK_ERR_ERROR, "only http://127.0.0.1:PORT/... URLs are supported");
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {0};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    inet_pton(AF_INET, host, &addr.sin_addr);
    if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0)
        return duk_error(ctx, DUK_ERR_ERROR, "connect failed");
    char head[4096];
    int n = snprintf(head, sizeof head, "POST %s HTTP/1.0\r\nHost: %s:%d\r\n%sContent-Length: %lu\r\nConnection: close\r\n\r\n",
                     path, host, port, headers, (unsigned long)body_len);
    if (write(fd, head, n) != n || write(fd, body, body_len) != (ssize_t)body_len)
        return duk_error(ctx, DUK_ERR_ERROR, "write failed");
    size_t cap = 65536, len = 0;
    char *resp = malloc(cap);
    ssize_t got;
    while ((got = read(fd, resp + len, cap - len - 1)) > 0) {
        len += got;
        if (len + 1 >= cap) { cap *= 2; resp = realloc(resp, cap); }
    }
    close(fd);
    resp[len] = 0;
    int status = 0;
    sscanf(resp, "HTTP/%*s %d", &status);
    char *text = strstr(resp, "\r\n\r\n");
    duk_push_array(ctx);
    duk_push_int(ctx, status);
    duk_put_prop_index(ctx, -2, 0);
    duk_push_string(ctx, text ? text + 4 : "");
    duk_put_prop_index(ctx, -2, 1);
    free(resp);
    return 1;
}

static duk_ret_t native_log(duk_context *ctx) {
    fprintf(stderr, "[%d] %s\n", (int)duk_to_int(ctx, 0), duk_safe_to_string(ctx, 1));
    return 0;
}

/* The stand-ins, in ES5 themselves. */
static const char *STANDINS =
    "function __request(names) {"
    "  return function () {"
    "    var headers = '', status = 0;"
    "    this[names.add] = function (h) { headers += h + '\\r\\n'; };"
    "    this[names.post] = function (url, body) { var r = __post(url, headers, body); status = r[0]; return r[1]; };"
    "    this[names.status] = function () { return status; };"
    "  };"
    "}"
    "var Zabbix = { Log: __log };"
    "if (__flavour === 'curl') {"
    "  var CurlHttpRequest = __request({ add: 'AddHeader', post: 'Post', status: 'Status' });"
    "} else {"
    "  var HttpRequest = __request({ add: 'addHeader', post: 'post', status: 'getStatus' });"
    "  Zabbix.log = __log;"
    "}";

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s SCRIPT PARAMS flavour\n", argv[0]); return 2; }
    char *script = read_file(argv[1]), *params = read_file(argv[2]);
    if (!script || !params) { fprintf(stderr, "cannot read inputs\n"); return 2; }
    duk_context *ctx = duk_create_heap_default();
    duk_push_c_function(ctx, native_post, 3);
    duk_put_global_string(ctx, "__post");
    duk_push_c_function(ctx, native_log, 2);
    duk_put_global_string(ctx, "__log");
    duk_push_string(ctx, argv[3]);
    duk_put_global_string(ctx, "__flavour");
    if (duk_peval_string(ctx, STANDINS) != 0) {
        printf("ERROR: stand-ins: %s\n", duk_safe_to_string(ctx, -1));
        return 1;
    }
    duk_pop(ctx);
    /* As Zabbix: the script is the body of function (value) { ... }. */
    size_t len = strlen(script) + 64;
    char *wrapped = malloc(len);
    snprintf(wrapped, len, "(function (value) {\n%s\n})", script);
    if (duk_peval_string(ctx, wrapped) != 0) {
        printf("ERROR: %s\n", duk_safe_to_string(ctx, -1));
        return 1;
    }
    duk_push_string(ctx, params);
    if (duk_pcall(ctx, 1) != 0) {
        printf("ERROR: %s\n", duk_safe_to_string(ctx, -1));
        return 1;
    }
    printf("%s\n", duk_safe_to_string(ctx, -1));
    duk_destroy_heap(ctx);
    return 0;
}
