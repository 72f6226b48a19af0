/* envproxy: an env forwarding to another. See envproxy.h. */
#include "net/envproxy.h"

#include "core/api.pb-c.h"

#include <assert.h>
#include <stddef.h>

struct envproxy *envproxy_of(struct env *env)
{
	assert(env != NULL);
	return (struct envproxy *)((char *)env - offsetof(struct envproxy, env));
}

#define REAL(env) (envproxy_of(env)->real)

static ms_t fw_now_ms(struct env *env)
{
	return REAL(env)->ops->now_ms(REAL(env));
}
static int fw_timer_start(struct env *env, ms_t delay_ms, ms_t repeat_ms, env_timer_cb cb,
			  void *data, env_timer_id *id)
{
	return REAL(env)->ops->timer_start(REAL(env), delay_ms, repeat_ms, cb, data, id);
}
static void fw_timer_stop(struct env *env, env_timer_id id)
{
	REAL(env)->ops->timer_stop(REAL(env), id);
}
static const char *fw_self_addr(struct env *env)
{
	return REAL(env)->ops->self_addr(REAL(env));
}
static int fw_listen(struct env *env, env_recv_cb recv_cb, env_peer_cb peer_cb,
		     void *data)
{
	return REAL(env)->ops->listen(REAL(env), recv_cb, peer_cb, data);
}
static int fw_send(struct env *env, const char *addr, const uint8_t *buf, size_t len)
{
	return REAL(env)->ops->send(REAL(env), addr, buf, len);
}
static int fw_storage_open(struct env *env, const char *name, struct sqlite3 **db)
{
	return REAL(env)->ops->storage_open(REAL(env), name, db);
}
static uint64_t fw_random_u64(struct env *env)
{
	return REAL(env)->ops->random_u64(REAL(env));
}
static void fw_log(struct env *env, enum env_log_level level, const char *msg)
{
	REAL(env)->ops->log(REAL(env), level, msg);
}
static int fw_ctl_open(struct env *env, const struct env_container_spec *spec,
		       struct env_ctl **ctl)
{
	return REAL(env)->ops->ctl_open(REAL(env), spec, ctl);
}
static int fw_ctl_list(struct env *env, struct env_ctl_list_req *req, env_ctl_list_cb cb)
{
	return REAL(env)->ops->ctl_list(REAL(env), req, cb);
}
static void fw_exit(struct env *env, const char *why)
{
	REAL(env)->ops->exit(REAL(env), why);
}
static void fw_sender(struct env *env, struct env_identity *out)
{
	REAL(env)->ops->sender(REAL(env), out);
}
static int fw_pki_csr(struct env *env, uint8_t *buf, size_t cap, size_t *len)
{
	return REAL(env)->ops->pki_csr(REAL(env), buf, cap, len);
}
static int fw_pki_ca_create(struct env *env, uint64_t cluster_id, ms_t life_ms,
			    uint8_t *cert, size_t cert_cap, size_t *cert_len,
			    uint8_t *key, size_t key_cap, size_t *key_len)
{
	return REAL(env)->ops->pki_ca_create(REAL(env), cluster_id, life_ms, cert,
					     cert_cap, cert_len, key, key_cap, key_len);
}
static int fw_pki_sign(struct env *env, const struct env_blob *ca_cert,
		       const struct env_blob *ca_key, const struct env_blob *csr,
		       const struct env_identity *who, ms_t life_ms, uint8_t *cert,
		       size_t cap, size_t *len)
{
	return REAL(env)->ops->pki_sign(REAL(env), ca_cert, ca_key, csr, who, life_ms,
					cert, cap, len);
}
static int fw_pki_install(struct env *env, const struct env_blob *cert,
			  const struct env_blob *roots, size_t root_count)
{
	return REAL(env)->ops->pki_install(REAL(env), cert, roots, root_count);
}
static int fw_pki_pin(struct env *env, const uint8_t digest[ENV_DIGEST_BYTES])
{
	return REAL(env)->ops->pki_pin(REAL(env), digest);
}
static int fw_pki_info(struct env *env, const struct env_blob *cert,
		       struct env_identity *out)
{
	return REAL(env)->ops->pki_info(REAL(env), cert, out);
}
static int fw_reply(struct env *env, uint64_t conn, const uint8_t *buf, size_t len)
{
	return REAL(env)->ops->reply(REAL(env), conn, buf, len);
}
static int fw_pki_lock(struct env *env, const uint8_t *kek)
{
	return REAL(env)->ops->pki_lock(REAL(env), kek);
}
static int fw_pki_unlock(struct env *env, const uint8_t *kek)
{
	return REAL(env)->ops->pki_unlock(REAL(env), kek);
}
static uint64_t fw_wall_ms(struct env *env)
{
	return REAL(env)->ops->wall_ms(REAL(env));
}

void envproxy_init(struct envproxy *p, struct env *real)
{
	const struct env_ops *r;

	assert(p != NULL && real != NULL && real->ops != NULL);
	r = real->ops;
	p->real = real;
	p->data = NULL;
	p->ops = *r; /* ctl_do, ctl_close: no env to translate */
	p->ops.now_ms = fw_now_ms;
	p->ops.timer_start = fw_timer_start;
	p->ops.timer_stop = fw_timer_stop;
	p->ops.self_addr = fw_self_addr;
	p->ops.listen = fw_listen;
	p->ops.send = fw_send;
	p->ops.storage_open = fw_storage_open;
	p->ops.random_u64 = fw_random_u64;
	p->ops.log = fw_log;
	p->ops.ctl_open = fw_ctl_open;
	p->ops.ctl_list = fw_ctl_list;
	p->ops.exit = fw_exit;
	p->ops.sender = fw_sender;
	p->ops.pki_csr = fw_pki_csr;
	p->ops.pki_ca_create = fw_pki_ca_create;
	p->ops.pki_sign = fw_pki_sign;
	p->ops.pki_install = fw_pki_install;
	p->ops.pki_pin = fw_pki_pin;
	p->ops.pki_info = fw_pki_info;
	p->ops.reply = fw_reply;
	p->ops.pki_lock = r->pki_lock ? fw_pki_lock : NULL;
	p->ops.pki_unlock = r->pki_unlock ? fw_pki_unlock : NULL;
	p->ops.wall_ms = r->wall_ms ? fw_wall_ms : NULL;
	p->env.ops = &p->ops;
	p->env.impl = p;
}

int envproxy_wire_tag(const char *name, uint8_t *tag)
{
	const ProtobufCFieldDescriptor *f =
		protobuf_c_message_descriptor_get_field_by_name(&cs__wire__descriptor,
								name);
	/* a one-byte tag: field number below 16, length-delimited */
	if (!f || f->id >= 16 || f->type != PROTOBUF_C_TYPE_MESSAGE)
		return -1;
	*tag = (uint8_t)((f->id << 3) | 2);
	return 0;
}
