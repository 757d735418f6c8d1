/*
 * llama-demo: the demo's stand-in for llama.cpp's programs, compiled for real in the images'
 * build stage. One small binary with llama.cpp's command-line shape, so the smoke checks in
 * ../bakegen.yaml exercise compiled code rather than a shell script:
 *
 *   llama-demo                       print /app/build-info (what the image was built with)
 *   llama-demo --version             "version: N (bakegen demo, ACCELERATOR)" and "built with CC for TARGET", on stderr
 *   llama-demo --run ARGS...         "run: ARGS", then the build info
 *   llama-demo --server [--host H] [--port N]
 *                                    HTTP on H:N (default LLAMA_ARG_HOST / LLAMA_ARG_PORT, else 0.0.0.0:8080):
 *                                    GET /health answers 200 {"status":"ok"}, GET /build-info the build info
 *   llama-demo --help
 *
 * ../app/llama-demo.sh is the same command line in busybox sh, for the arches built under QEMU.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#ifndef LLAMA_DEMO_VERSION
#define LLAMA_DEMO_VERSION 1
#endif
#ifndef LLAMA_DEMO_TARGET /* the build passes gcc -dumpmachine */
#define LLAMA_DEMO_TARGET "unknown"
#endif
#if defined(__clang__)
#define LLAMA_DEMO_COMPILER "clang " __clang_version__
#elif defined(__GNUC__)
#define LLAMA_DEMO_COMPILER "gcc " __VERSION__
#else
#define LLAMA_DEMO_COMPILER "cc"
#endif

#define BUILD_INFO_PATH "/app/build-info"
#define DEFAULT_HOST "0.0.0.0"
#define DEFAULT_PORT "8080"
#define REQUEST_LIMIT 8192
#define CLIENT_TIMEOUT_SECONDS 5

static volatile sig_atomic_t stop_requested = 0;

static void request_stop(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

/* Copies the build info to `out`; returns 0, or -1 (with a message) when the image has none. */
static int print_build_info(FILE *out) {
    FILE *info = fopen(BUILD_INFO_PATH, "r");
    if (info == NULL) {
        fprintf(stderr, "llama-demo: %s: %s\n", BUILD_INFO_PATH, strerror(errno));
        return -1;
    }
    char chunk[4096];
    size_t count;
    while ((count = fread(chunk, 1, sizeof chunk, info)) > 0) {
        fwrite(chunk, 1, count, out);
    }
    fclose(info);
    return 0;
}

/* The ACCELERATOR=... value of the build info, or "unknown". */
static void read_accelerator(char *accelerator, size_t size) {
    snprintf(accelerator, size, "unknown");
    FILE *info = fopen(BUILD_INFO_PATH, "r");
    if (info == NULL) {
        return;
    }
    char line[256];
    while (fgets(line, sizeof line, info) != NULL) {
        if (strncmp(line, "ACCELERATOR=", 12) == 0) {
            line[strcspn(line, "\r\n")] = '\0';
            snprintf(accelerator, size, "%s", line + 12);
            break;
        }
    }
    fclose(info);
}

static int print_version(void) {
    char accelerator[256];
    read_accelerator(accelerator, sizeof accelerator);
    /* On stderr, as llama.cpp prints it. */
    fprintf(stderr, "version: %d (bakegen demo, %s)\n", LLAMA_DEMO_VERSION, accelerator);
    fprintf(stderr, "built with %s for %s\n", LLAMA_DEMO_COMPILER, LLAMA_DEMO_TARGET);
    return 0;
}

static void print_usage(FILE *out) {
    fputs("usage: llama-demo [--version | --help | --run ARGS... | --server [--host HOST] [--port PORT]]\n"
          "  (no arguments)  print the build info\n"
          "  --version       print the version and the compiler on stderr\n"
          "  --run ARGS      print the arguments and the build info (a stand-in for running a model)\n"
          "  --server        serve HTTP: GET /health, GET /build-info\n",
          out);
}

static int run_model(int argc, char **argv) {
    fputs("run:", stdout);
    for (int i = 0; i < argc; i++) {
        printf(" %s", argv[i]);
    }
    putchar('\n');
    return print_build_info(stdout) == 0 ? 0 : 1;
}

/* Reads the build info into `body` (at most size - 1 bytes); returns its length, or -1. */
static long read_build_info(char *body, size_t size) {
    FILE *info = fopen(BUILD_INFO_PATH, "r");
    if (info == NULL) {
        return -1;
    }
    size_t length = fread(body, 1, size - 1, info);
    fclose(info);
    body[length] = '\0';
    return (long)length;
}

static void send_all(int client, const char *data, size_t length) {
    while (length > 0) {
        ssize_t sent = send(client, data, length, 0);
        if (sent <= 0) {
            return; /* the client went away; nothing to tell it */
        }
        data += sent;
        length -= (size_t)sent;
    }
}

static void respond(int client, int status, const char *reason, const char *content_type, const char *body, int with_body) {
    char head[256];
    size_t body_length = strlen(body);
    int head_length = snprintf(head, sizeof head,
                               "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                               status, reason, content_type, body_length);
    send_all(client, head, (size_t)head_length);
    if (with_body) {
        send_all(client, body, body_length);
    }
}

static void handle_client(int client) {
    struct timeval timeout = {.tv_sec = CLIENT_TIMEOUT_SECONDS, .tv_usec = 0};
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);

    char request[REQUEST_LIMIT + 1];
    size_t received = 0;
    while (received < REQUEST_LIMIT) {
        ssize_t count = recv(client, request + received, REQUEST_LIMIT - received, 0);
        if (count <= 0) {
            break;
        }
        received += (size_t)count;
        request[received] = '\0';
        if (strstr(request, "\r\n\r\n") != NULL || strstr(request, "\n\n") != NULL) {
            break;
        }
    }
    request[received] = '\0';

    char method[16] = "", path[1024] = "";
    if (sscanf(request, "%15s %1023s", method, path) != 2) {
        respond(client, 400, "Bad Request", "application/json", "{\"error\":\"bad request\"}\n", 1);
        printf("- - 400\n");
        return;
    }
    path[strcspn(path, "?")] = '\0';
    int is_head = strcmp(method, "HEAD") == 0;
    int status;
    if (strcmp(method, "GET") != 0 && !is_head) {
        status = 405;
        respond(client, status, "Method Not Allowed", "application/json", "{\"error\":\"method not allowed\"}\n", 1);
    } else if (strcmp(path, "/health") == 0) {
        status = 200;
        respond(client, status, "OK", "application/json", "{\"status\":\"ok\"}\n", !is_head);
    } else if (strcmp(path, "/build-info") == 0) {
        char body[4096];
        if (read_build_info(body, sizeof body) >= 0) {
            status = 200;
            respond(client, status, "OK", "text/plain", body, !is_head);
        } else {
            status = 500;
            respond(client, status, "Internal Server Error", "application/json", "{\"error\":\"no build info\"}\n", !is_head);
        }
    } else {
        status = 404;
        respond(client, status, "Not Found", "application/json", "{\"error\":\"not found\"}\n", !is_head);
    }
    printf("%s %s %d\n", method, path, status);
}

static int serve(const char *host, const char *port) {
    char *end = NULL;
    long port_number = strtol(port, &end, 10);
    if (end == port || *end != '\0' || port_number < 1 || port_number > 65535) {
        fprintf(stderr, "llama-demo: --port: not a port number: '%s'\n", port);
        return 2;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *addresses = NULL;
    int error = getaddrinfo(host, port, &hints, &addresses);
    if (error != 0) {
        fprintf(stderr, "llama-demo: %s:%s: %s\n", host, port, gai_strerror(error));
        return 1;
    }
    int listener = -1;
    for (struct addrinfo *address = addresses; address != NULL && listener < 0; address = address->ai_next) {
        listener = socket(address->ai_family, address->ai_socktype, address->ai_protocol);
        if (listener < 0) {
            continue;
        }
        int reuse = 1;
        setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof reuse);
        if (bind(listener, address->ai_addr, address->ai_addrlen) != 0 || listen(listener, 16) != 0) {
            close(listener);
            listener = -1;
        }
    }
    freeaddrinfo(addresses);
    if (listener < 0) {
        fprintf(stderr, "llama-demo: cannot listen on %s:%s: %s\n", host, port, strerror(errno));
        return 1;
    }

    /* As PID 1 in a container, SIGTERM is ignored unless handled: handle it, and let accept()
     * return EINTR (no SA_RESTART) so `docker stop` ends the server at once. */
    struct sigaction stop = {.sa_handler = request_stop};
    sigemptyset(&stop.sa_mask);
    sigaction(SIGTERM, &stop, NULL);
    sigaction(SIGINT, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    printf("listening on %s:%s\n", host, port);
    while (!stop_requested) {
        int client = accept(listener, NULL, NULL);
        if (client < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("llama-demo: accept");
            break;
        }
        handle_client(client);
        close(client);
    }
    close(listener);
    printf("stopped\n");
    return 0;
}

static int server_main(int argc, char **argv) {
    const char *host = getenv("LLAMA_ARG_HOST");
    const char *port = getenv("LLAMA_ARG_PORT");
    if (host == NULL || *host == '\0') {
        host = DEFAULT_HOST;
    }
    if (port == NULL || *port == '\0') {
        port = DEFAULT_PORT;
    }
    for (int i = 0; i < argc; i++) {
        int is_port = strcmp(argv[i], "--port") == 0, is_host = strcmp(argv[i], "--host") == 0;
        if (is_port || is_host) {
            if (i + 1 == argc) {
                fprintf(stderr, "llama-demo: %s needs a value\n", argv[i]);
                return 2;
            }
            *(is_port ? &port : &host) = argv[++i];
        } else {
            /* llama-server takes many more options; the demo accepts and ignores them. */
            fprintf(stderr, "llama-demo: ignoring option '%s'\n", argv[i]);
        }
    }
    return serve(host, port);
}

int main(int argc, char **argv) {
    /* Line-buffered, so `docker logs` shows each line as it happens. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 2) {
        return print_build_info(stdout) == 0 ? 0 : 1;
    }
    const char *command = argv[1];
    if (strcmp(command, "--version") == 0) {
        return print_version();
    }
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0) {
        print_usage(stdout);
        return 0;
    }
    if (strcmp(command, "--run") == 0 || strcmp(command, "-r") == 0) {
        return run_model(argc - 2, argv + 2);
    }
    if (strcmp(command, "--server") == 0) {
        return server_main(argc - 2, argv + 2);
    }
    fprintf(stderr, "llama-demo: unknown option '%s'\n", command);
    print_usage(stderr);
    return 2;
}
