/*
 * target.c - parsing the -t NAME=[ADDR:]PORT[/MODE[/PID]] argument of the
 * benchmark drivers.
 */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "target.h"

bool
bt_sockaddr(const char *addr, long port, struct sockaddr_in *out)
{
	memset(out, 0, sizeof(*out));
	out->sin_family = AF_INET;
	out->sin_port = htons((uint16_t)port);
	return port > 0 && port <= 65535 &&
	       inet_pton(AF_INET, addr, &out->sin_addr) == 1;
}

bool
bt_parse_target(const char *spec, struct bt_target *t)
{
	char buf[128], *eq, *hp, *slash, *mode = NULL, *pid = NULL, *colon;
	const char *host = "127.0.0.1";
	long port;

	if (strlen(spec) >= sizeof(buf))
		return false;
	strcpy(buf, spec);
	eq = strchr(buf, '=');
	if (eq == NULL || eq == buf || (size_t)(eq - buf) >= sizeof(t->name))
		return false;
	*eq = '\0';
	strcpy(t->name, buf);
	hp = eq + 1;
	slash = strchr(hp, '/');
	if (slash != NULL) {
		*slash = '\0';
		mode = slash + 1;
		slash = strchr(mode, '/');
		if (slash != NULL) {
			*slash = '\0';
			pid = slash + 1;
		}
	}
	colon = strrchr(hp, ':');
	if (colon != NULL) {
		*colon = '\0';
		host = hp;
		hp = colon + 1;
	}
	port = strtol(hp, NULL, 10);
	if (!bt_sockaddr(host, port, &t->addr))
		return false;
	if (mode != NULL && strlen(mode) >= sizeof(t->mode))
		return false;
	strcpy(t->mode, mode != NULL ? mode : "");
	t->pid = pid != NULL ? (pid_t)strtol(pid, NULL, 10) : 0;
	return true;
}
