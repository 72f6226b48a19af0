/* fuzz_dockerapi_spec: a Docker ServiceSpec body (what `docker service
 * create` and `update` POST to the Docker API, net/dockerapi.c) through
 * dockerapi_spec_from_json, then back: dockerapi_spec_json of the spec read,
 * read again, must give the same spec (the same packed bytes): what the API
 * shows of a service is what it would take back unchanged. A refusal says
 * why. The HTTP stream around it: fuzz_dockerapi_http. */
#include <jansson.h>
#include <string.h>

#include "core/api.pb-c.h"
#include "core/errors.h"
#include "net/dockerapi.h"
#include "tests/fuzz/fuzz.h"

static uint8_t *pack(const Cs__ServiceSpec *s, size_t *len)
{
	uint8_t *buf;
	*len = cs__service_spec__get_packed_size(s);
	buf = malloc(*len ? *len : 1);
	FUZZ_CHECK(buf);
	cs__service_spec__pack(s, buf);
	return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Cs__ServiceSpec *spec = NULL, *spec2 = NULL;
	char err[512] = "";
	json_t *j;
	char *text;
	uint8_t *b1, *b2;
	size_t l1, l2;
	int rc;

	rc = dockerapi_spec_from_json((const char *)data, size, &spec, err, sizeof err);
	if (rc != 0) {
		FUZZ_CHECK(rc == CS_EINVAL || rc == CS_ENOMEM);
		FUZZ_CHECK(err[0] != '\0');
		return 0;
	}
	FUZZ_CHECK(spec);
	j = dockerapi_spec_json(spec);
	FUZZ_CHECK(j);
	text = json_dumps(j, JSON_COMPACT);
	FUZZ_CHECK(text);
	rc = dockerapi_spec_from_json(text, strlen(text), &spec2, err, sizeof err);
	if (rc != 0)
		fprintf(stderr, "shown: %s\nrefused: %s\n", text, err);
	FUZZ_CHECK(rc == 0);
	b1 = pack(spec, &l1);
	b2 = pack(spec2, &l2);
	if (l1 != l2 || memcmp(b1, b2, l1) != 0)
		fprintf(stderr, "shown: %s\n", text);
	FUZZ_CHECK(l1 == l2 && memcmp(b1, b2, l1) == 0);
	free(b1);
	free(b2);
	free(text);
	json_decref(j);
	cs__service_spec__free_unpacked(spec, NULL);
	cs__service_spec__free_unpacked(spec2, NULL);
	return 0;
}
