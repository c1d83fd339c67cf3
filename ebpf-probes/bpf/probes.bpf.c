/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* One object: the programs below share the connection table and ring buffer. */
#include "conn.bpf.c"
#include "data.bpf.c"
#include "tls.bpf.c"
#include "gotls.bpf.c"
#include "proc.bpf.c"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
