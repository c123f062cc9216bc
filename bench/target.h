/*
 * target.h - the -t NAME=[ADDR:]PORT[/MODE[/PID]] argument that the
 * benchmark drivers (loadgen, udpbench) share.
 */
#ifndef BENCH_TARGET_H
#define BENCH_TARGET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <sys/types.h>

#define BT_NAME_MAX 32
#define BT_MODE_MAX 16

/* One parsed -t argument. */
struct bt_target {
	char name[BT_NAME_MAX];
	struct sockaddr_in addr; /* ADDR (127.0.0.1 by default) and PORT */
	char mode[BT_MODE_MAX];  /* MODE as written, "" when absent */
	pid_t pid;               /* PID, 0 when absent */
};

/* Fills *out with IPv4 address addr and port.  Returns false when port
 * is not 1..65535 or addr is not an IPv4 address. */
bool bt_sockaddr(const char *addr, long port, struct sockaddr_in *out);

/* Parses spec into *t.  Returns false (t undefined) when the name is
 * empty or too long, the port is not 1..65535, ADDR is not an IPv4
 * address or MODE is too long; MODE itself is the caller's to check. */
bool bt_parse_target(const char *spec, struct bt_target *t);

#endif
