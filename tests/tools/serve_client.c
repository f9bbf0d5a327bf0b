/* serve_client — a load generator for `rlhf serve`, used by the crash-safety
 * test (tests/cli/serve_crash.sh) and the load benchmark (bench/serve_load.sh).
 *
 *   serve_client PORT TOKENS_FILE CLIENTS SECONDS ACK_LOG
 *
 * Each of CLIENTS threads logs in with a token (line i % n of TOKENS_FILE),
 * asks /api/compare for two generations once, then posts judgements (pairs
 * and thumbs alternately, each with a unique client_key) over one keep-alive
 * connection for SECONDS. Every judgement answered 201 is appended to ACK_LOG
 * as "<judgement id>" on its own line, right after the answer arrives (so a
 * server killed mid-run leaves the log listing exactly what it acknowledged).
 * A dropped connection is re-opened (the server may be gone: that counts as
 * an error, not an ack). Prints one JSON line of counts and latency
 * percentiles to stdout.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* strcasestr, memmem */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int port;
static double seconds;
static int ack_fd;
static char tokens[256][128];
static int ntokens;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

typedef struct {
    int id;
    int fd;
    char cookie[160];
    char csrf[80];
    long long gen[2];
    long acked, failed, conn_errors, rejected, login_retries;
    double *lat;
    long nlat, caplat;
} client;

static int connect_server(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { close(fd); return -1; }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0) { if (k < 0 && errno == EINTR) continue; return -1; }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One request/response on c->fd. Returns the status (or -1 on a connection
 * failure); the body goes to body[cap]; Set-Cookie is captured. */
static int request(client *c, const char *path, const char *json, char *body, size_t cap) {
    if (c->fd < 0) c->fd = connect_server();
    if (c->fd < 0) return -1;
    char req[4096], extra[320] = "";
    size_t el = 0;
    if (c->cookie[0]) el += (size_t)snprintf(extra + el, sizeof extra - el, "Cookie: %s\r\n", c->cookie);
    if (c->csrf[0]) snprintf(extra + el, sizeof extra - el, "X-CSRF-Token: %s\r\n", c->csrf);
    int n = snprintf(req, sizeof req,
                     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nOrigin: http://127.0.0.1:%d\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s\r\n%s",
                     path, port, port, strlen(json), extra, json);
    if (n < 0 || (size_t)n >= sizeof req || write_all(c->fd, req, (size_t)n)) goto fail;
    char buf[65536];
    size_t len = 0;
    char *hdr_end = NULL;
    while (!hdr_end) {
        ssize_t k = recv(c->fd, buf + len, sizeof buf - 1 - len, 0);
        if (k <= 0) goto fail;
        len += (size_t)k;
        buf[len] = 0;
        hdr_end = strstr(buf, "\r\n\r\n");
        if (!hdr_end && len >= sizeof buf - 1) goto fail;
    }
    int status = 0;
    if (sscanf(buf, "HTTP/1.1 %d", &status) != 1) goto fail;
    size_t hlen = (size_t)(hdr_end + 4 - buf);
    char *cl = strcasestr(buf, "\r\nContent-Length:");
    if (!cl || cl > hdr_end) goto fail;
    size_t blen = strtoul(cl + 17, NULL, 10);
    char *ck = strcasestr(buf, "\r\nSet-Cookie: ");
    if (ck && ck < hdr_end) {
        char *semi = strchr(ck + 14, ';');
        if (semi && (size_t)(semi - (ck + 14)) < sizeof c->cookie) {
            memcpy(c->cookie, ck + 14, (size_t)(semi - (ck + 14)));
            c->cookie[semi - (ck + 14)] = 0;
        }
    }
    while (len < hlen + blen) {
        if (len >= sizeof buf - 1) goto fail;
        ssize_t k = recv(c->fd, buf + len, sizeof buf - 1 - len, 0);
        if (k <= 0) goto fail;
        len += (size_t)k;
    }
    buf[hlen + blen] = 0;
    snprintf(body, cap, "%s", buf + hlen);
    if (strcasestr(buf, "\r\nConnection: close")) { close(c->fd); c->fd = -1; }
    return status;
fail:
    close(c->fd);
    c->fd = -1;
    return -1;
}

static int json_str(const char *body, const char *key, char *out, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", key);
    const char *p = strstr(body, pat);
    if (!p) return 0;
    p += strlen(pat);
    const char *e = strchr(p, '"');
    if (!e || (size_t)(e - p) >= cap) return 0;
    memcpy(out, p, (size_t)(e - p));
    out[e - p] = 0;
    return 1;
}

static void *run(void *arg) {
    client *c = arg;
    char body[65536], json[512];
    double t_end = now() + seconds;
    /* Log in and get two generations to judge. */
    while (now() < t_end) {
        snprintf(json, sizeof json, "{\"token\":\"%s\"}", tokens[c->id % ntokens]);
        c->cookie[0] = c->csrf[0] = 0;
        if (request(c, "/api/login", json, body, sizeof body) == 200 && json_str(body, "csrf", c->csrf, sizeof c->csrf)) {
            if (request(c, "/api/compare", "{\"prompt\":\"load test prompt\",\"k\":2}", body, sizeof body) == 200) {
                const char *p = strstr(body, "\"id\":");
                const char *q = p ? strstr(p + 5, "\"id\":") : NULL;
                if (p && q) {
                    c->gen[0] = atoll(p + 5);
                    c->gen[1] = atoll(q + 5);
                    break;
                }
            }
        }
        /* Login is rate limited per address (5/s): many clients starting at once wait their turn. */
        c->login_retries++;
        usleep(50000);
    }
    long seq = 0;
    while (now() < t_end && c->gen[0]) {
        seq++;
        if (seq % 2)
            snprintf(json, sizeof json, "{\"generations\":[%lld,%lld],\"choice\":\"%s\",\"comment\":\"load %d/%ld\",\"client_key\":\"r%d-c%d-%ld\"}",
                     c->gen[0], c->gen[1], seq % 4 == 1 ? "A" : "B", c->id, seq, (int)getpid(), c->id, seq);
        else
            snprintf(json, sizeof json, "{\"generation\":%lld,\"thumb\":%d,\"client_key\":\"r%d-c%d-%ld\"}", c->gen[seq % 4 == 0], seq % 3 ? 1 : -1,
                     (int)getpid(), c->id, seq);
        double t0 = now();
        int st = request(c, seq % 2 ? "/api/pair" : "/api/thumbs", json, body, sizeof body);
        double dt = now() - t0;
        if (st == 201) {
            char line[48];
            const char *p = strstr(body, "\"id\":");
            int n = snprintf(line, sizeof line, "%lld\n", p ? atoll(p + 5) : -1LL);
            if (write(ack_fd, line, (size_t)n) != n) perror("ack log");
            c->acked++;
            if (c->nlat == c->caplat) {
                c->caplat = c->caplat * 2 + 1024;
                c->lat = realloc(c->lat, (size_t)c->caplat * sizeof *c->lat);
            }
            c->lat[c->nlat++] = dt;
        } else if (st < 0) {
            c->conn_errors++;
            usleep(20000); /* server gone or restarting: back off a little */
        } else {
            c->rejected++;
        }
    }
    if (c->fd >= 0) close(c->fd);
    return NULL;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: serve_client PORT TOKENS_FILE CLIENTS SECONDS ACK_LOG\n");
        return 2;
    }
    port = atoi(argv[1]);
    int nclients = atoi(argv[3]);
    seconds = atof(argv[4]);
    FILE *f = fopen(argv[2], "r");
    if (!f) { perror(argv[2]); return 2; }
    while (ntokens < 256 && fgets(tokens[ntokens], sizeof tokens[0], f)) {
        tokens[ntokens][strcspn(tokens[ntokens], "\r\n")] = 0;
        if (tokens[ntokens][0]) ntokens++;
    }
    fclose(f);
    if (!ntokens || nclients < 1 || nclients > 1000) { fprintf(stderr, "need tokens and 1..1000 clients\n"); return 2; }
    ack_fd = open(argv[5], O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (ack_fd < 0) { perror(argv[5]); return 2; }
    client *cs = calloc((size_t)nclients, sizeof *cs);
    pthread_t *th = calloc((size_t)nclients, sizeof *th);
    double t0 = now();
    for (int i = 0; i < nclients; i++) {
        cs[i].id = i;
        cs[i].fd = -1;
        pthread_create(&th[i], NULL, run, &cs[i]);
    }
    long acked = 0, conn = 0, rej = 0, nlat = 0, logins = 0;
    for (int i = 0; i < nclients; i++) {
        pthread_join(th[i], NULL);
        acked += cs[i].acked;
        conn += cs[i].conn_errors;
        rej += cs[i].rejected;
        logins += cs[i].login_retries;
        nlat += cs[i].nlat;
    }
    double wall = now() - t0;
    double *all = malloc((size_t)(nlat ? nlat : 1) * sizeof *all);
    long k = 0;
    for (int i = 0; i < nclients; i++) {
        memcpy(all + k, cs[i].lat, (size_t)cs[i].nlat * sizeof *all);
        k += cs[i].nlat;
        free(cs[i].lat);
    }
    qsort(all, (size_t)nlat, sizeof *all, cmp_d);
    double p50 = nlat ? all[nlat / 2] : 0, p99 = nlat ? all[(long)(nlat * 0.99)] : 0, pmax = nlat ? all[nlat - 1] : 0;
    printf("{\"clients\":%d,\"seconds\":%.2f,\"acked\":%ld,\"rejected\":%ld,\"connection_errors\":%ld,"
           "\"login_retries\":%ld,\"judgements_per_s\":%.1f,\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"max_ms\":%.2f}\n",
           nclients, wall, acked, rej, conn, logins, acked / wall, p50 * 1e3, p99 * 1e3, pmax * 1e3);
    free(all);
    free(cs);
    free(th);
    close(ack_fd);
    return 0;
}
