/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* What every weft BPF program includes: kernel UAPI, libbpf helpers, the ABI. */
#pragma once

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>

/* libbpf's helpers need the UAPI types above. */
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "maps/weft_abi.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Helpers return >= 0 to go on, or -enum weft_reason to end the packet. */
#define WEFT_OK 0
