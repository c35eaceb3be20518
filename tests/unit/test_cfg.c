/* SPDX-License-Identifier: Apache-2.0 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "lg_buf.h"
#include "lg_cfg.h"
#include "lg_err.h"
#include "lg_test.h"

struct cfg_fixture {
    const char *listen;
    int64_t heartbeat;
    bool verbose;
    struct lg_cfg_opt opts[3];
};

/* Splits |line| on spaces into a writable argv (the parser takes char ** like main). */
struct cfg_argv {
    char buf[256];
    char *argv[16];
    int argc;
};

static char **cfg_argv(struct cfg_argv *a, const char *line)
{
    size_t n = strlen(line);
    assert_true(n < sizeof(a->buf));
    memcpy(a->buf, line, n + 1);
    a->argc = 0;
    for (char *p = a->buf; *p;) {
        a->argv[a->argc++] = p;
        while (*p && *p != ' ') {
            p++;
        }
        if (*p) {
            *p++ = 0;
        }
    }
    a->argv[a->argc] = NULL;
    return a->argv;
}

static int setup(void **state)
{
    static struct cfg_fixture f;
    lg_test_use_cmocka_allocator();
    memset(&f, 0, sizeof(f));
    f.opts[0] = (struct lg_cfg_opt){"listen", LG_CFG_STRING, &f.listen, "127.0.0.1:0", 0, 0,
                                    "address"};
    f.opts[1] = (struct lg_cfg_opt){"heartbeat-ms", LG_CFG_INT, &f.heartbeat, "15000", 1,
                                    600000, "heartbeat"};
    f.opts[2] = (struct lg_cfg_opt){"verbose", LG_CFG_BOOL, &f.verbose, "false", 0, 0, "more"};
    unsetenv("LLMGATE_LISTEN");
    unsetenv("LLMGATE_HEARTBEAT_MS");
    unsetenv("LLMGATE_VERBOSE");
    *state = &f;
    return 0;
}

static void test_cfg_defaults_env_flags_precedence(void **state)
{
    struct cfg_fixture *f = *state;
    char err[256];
    struct cfg_argv argv1_;
    char **argv1 = cfg_argv(&argv1_, "prog");
    assert_int_equal(lg_cfg_parse(f->opts, 3, 1, argv1, NULL, 0, NULL, err, sizeof(err)), LG_OK);
    assert_string_equal(f->listen, "127.0.0.1:0");
    assert_int_equal(f->heartbeat, 15000);
    assert_false(f->verbose);

    setenv("LLMGATE_HEARTBEAT_MS", "250", 1);
    setenv("LLMGATE_LISTEN", "0.0.0.0:1", 1);
    struct cfg_argv argv2_;
    char **argv2 = cfg_argv(&argv2_, "prog --listen 127.0.0.1:9 --verbose");
    assert_int_equal(lg_cfg_parse(f->opts, 3, 4, argv2, NULL, 0, NULL, err, sizeof(err)), LG_OK);
    assert_string_equal(f->listen, "127.0.0.1:9"); /* flag beats env */
    assert_int_equal(f->heartbeat, 250);           /* env beats default */
    assert_true(f->verbose);
}

static void test_cfg_errors_name_the_key(void **state)
{
    struct cfg_fixture *f = *state;
    char err[256];
    struct cfg_argv argv1_;
    char **argv1 = cfg_argv(&argv1_, "prog --heartbeat-ms=abc");
    assert_int_equal(lg_cfg_parse(f->opts, 3, 2, argv1, NULL, 0, NULL, err, sizeof(err)),
                     LG_ERR_INVALID);
    assert_non_null(strstr(err, "--heartbeat-ms"));
    assert_non_null(strstr(err, "LLMGATE_HEARTBEAT_MS"));

    struct cfg_argv argv2_;
    char **argv2 = cfg_argv(&argv2_, "prog --nope");
    assert_int_equal(lg_cfg_parse(f->opts, 3, 2, argv2, NULL, 0, NULL, err, sizeof(err)),
                     LG_ERR_INVALID);
    assert_non_null(strstr(err, "--nope"));

    setenv("LLMGATE_HEARTBEAT_MS", "0", 1); /* below min */
    struct cfg_argv argv3_;
    char **argv3 = cfg_argv(&argv3_, "prog");
    assert_int_equal(lg_cfg_parse(f->opts, 3, 1, argv3, NULL, 0, NULL, err, sizeof(err)),
                     LG_ERR_INVALID);
    assert_non_null(strstr(err, "environment"));

    struct cfg_argv argv4_;
    char **argv4 = cfg_argv(&argv4_, "prog --listen");
    unsetenv("LLMGATE_HEARTBEAT_MS");
    assert_int_equal(lg_cfg_parse(f->opts, 3, 2, argv4, NULL, 0, NULL, err, sizeof(err)),
                     LG_ERR_INVALID);
}

static void test_cfg_help_and_positionals(void **state)
{
    struct cfg_fixture *f = *state;
    char err[256];
    struct cfg_argv argv1_;
    char **argv1 = cfg_argv(&argv1_, "prog migrate --help");
    int pos[2];
    size_t npos = 0;
    assert_int_equal(lg_cfg_parse(f->opts, 3, 3, argv1, pos, 2, &npos, err, sizeof(err)), 1);
    struct cfg_argv argv2_;
    char **argv2 = cfg_argv(&argv2_, "prog migrate --verbose=no");
    assert_int_equal(lg_cfg_parse(f->opts, 3, 3, argv2, pos, 2, &npos, err, sizeof(err)), LG_OK);
    assert_int_equal(npos, 1);
    assert_int_equal(pos[0], 1);
    assert_false(f->verbose);

    struct lg_buf b;
    lg_buf_init(&b, 4096);
    assert_int_equal(lg_cfg_usage(f->opts, 3, "prog", NULL, &b), LG_OK);
    assert_non_null(strstr((char *)b.data, "--heartbeat-ms N"));
    assert_non_null(strstr((char *)b.data, "LLMGATE_HEARTBEAT_MS, default 15000"));
    lg_buf_deinit(&b);
}

static void test_cfg_split_hostport(void **state)
{
    (void)state;
    char host[64];
    uint16_t port;
    assert_int_equal(lg_cfg_split_hostport("127.0.0.1:0", host, sizeof(host), &port), LG_OK);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 0);
    assert_int_equal(lg_cfg_split_hostport("[::1]:8080", host, sizeof(host), &port), LG_OK);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 8080);
    assert_int_equal(lg_cfg_split_hostport("nohost", host, sizeof(host), &port), LG_ERR_INVALID);
    assert_int_equal(lg_cfg_split_hostport(":80", host, sizeof(host), &port), LG_ERR_INVALID);
    assert_int_equal(lg_cfg_split_hostport("h:70000", host, sizeof(host), &port), LG_ERR_INVALID);
    assert_int_equal(lg_cfg_split_hostport("h:8x", host, sizeof(host), &port), LG_ERR_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_cfg_defaults_env_flags_precedence, setup),
        cmocka_unit_test_setup(test_cfg_errors_name_the_key, setup),
        cmocka_unit_test_setup(test_cfg_help_and_positionals, setup),
        cmocka_unit_test_setup(test_cfg_split_hostport, setup),
    };
    return cmocka_run_group_tests_name("cfg", tests, NULL, NULL);
}
