/* tinyjail syscall recorder: every syscall of one process tree, one fixed-size ring record each.
 *
 * The loader (loader.py) substitutes the TJ_* macros below before bcc compiles this file, and
 * generates tj_path_args() from libseccomp's table (no syscall number is typed here).
 *
 * Design (measured choices are written down in README.md):
 *  - raw tracepoints sys_enter/sys_exit (cheaper than TRACEPOINT_PROBE(raw_syscalls, ...)).
 *  - membership: `tracked` hash keyed by tgid (plus thread tids so exits can be matched);
 *    the launcher's child is ARMED (only its execve is recorded) and becomes TRACKED at exec.
 *  - one record per syscall, written at sys_exit (pt_regs still hold the six args, orig_ax
 *    is the number). By default (TJ_DURATIONS 0) only sys_exit is attached: ts is the exit
 *    time, duration -1 (not measured), path arguments are read at exit (the user memory still
 *    holds them; execve's comes from the exec hook, its old memory is gone).
 *    With TJ_DURATIONS, sys_enter stores the entry time per tid and copies path arguments
 *    before the kernel or another thread can change that memory.
 *  - exit/exit_group never reach sys_exit: they are recorded from sched_process_exit with the
 *    exiting task's saved registers (orig_ax is still the number), or at sys_enter when
 *    sys_enter is attached anyway (TJ_ENTER_HOOK: durations on, or no BTF for the raw hooks).
 *  - events are gathered per CPU (`batches`) and go to the ring TJ_BATCH at a time: one ring
 *    output per batch instead of a reserve/submit per syscall. Every program here runs with
 *    preemption off (syscall and sched tracepoints), so a CPU's batch has one writer at a time;
 *    userspace reads the partial batches once the programs are detached.
 *  - every ring output failure is counted in `counters`, so the trace knows exactly what it lost.
 *  - user stacks only for the first TJ_STACK_K calls per (syscall, user ip); the rest are counted.
 */

/* bcc's rewriter resolves a kernel symbol at every call site named bpf_probe_read_user[_str]
 * (to fall back to bpf_probe_read before Linux 5.5), loading all of /proc/kallsyms each time:
 * ~0.1 s of compile time per call site. The ring buffer needs Linux 5.8 anyway, so the same
 * helpers are called under names the rewriter does not look at. */
static long (*tj_read_user)(void *dst, u32 size, const void *src) = (void *)BPF_FUNC_probe_read_user;
static long (*tj_read_user_str)(void *dst, u32 size, const void *src) = (void *)BPF_FUNC_probe_read_user_str;
static long (*tj_read_kernel_str)(void *dst, u32 size, const void *src) = (void *)BPF_FUNC_probe_read_kernel_str;

/* sys_enter is needed for entry times, and for exit/exit_group when the sched hooks cannot
 * read the exiting task's registers (no kernel BTF: perf tracepoints, no bpf_task_pt_regs). */
#define TJ_ENTER_HOOK (TJ_DURATIONS || !TJ_RAW_SCHED)

#define TJ_ARMED 2
#define TJ_TRACKED 1

#define CNT_EVENTS_LOST 0
#define CNT_PATHS_LOST 1
#define CNT_PROCS_LOST 2
#define CNT_STACK_ERRORS 3
#define CNT_STARTS_FULL 4
#define CNT_STACKS_TAKEN 5

#define PROC_FORK 1
#define PROC_EXEC 2
#define PROC_EXIT 3
#define PROC_START 4

/* x86_64 struct pt_regs (the user register frame; ABI-stable, so no kernel header is needed). */
struct tj_regs {
    u64 r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip, cs, flags, sp, ss;
};

/* Only r10..ip (80 bytes) are needed per event: the six args, orig_ax and ip. sp is read on
 * its own when a stack is taken. Halves the copy of the whole 168-byte frame. */
#define TJ_REGS_FROM 56
#define TJ_REGS_LEN 80
#define TJ_REGS_SP 152

#if TJ_RAW_SCHED
/* With kernel BTF the task's own pt_regs and comm are read in place: bpf_task_pt_regs() gives a
 * BTF pointer the verifier lets the program load from (the fields are checked against the
 * kernel's struct pt_regs, whose x86_64 layout tj_regs mirrors), and task->comm is two loads
 * at its BTF offset. Copying them with bpf_probe_read_kernel and bpf_get_current_comm cost
 * ~40 ns each per syscall (measured, notes/bench-trace.md). */
#define TJ_USER_REGS(r, kregs) \
    struct tj_regs *r = (struct tj_regs *)bpf_task_pt_regs(bpf_get_current_task_btf())
#else
#define TJ_USER_REGS(r, kregs) \
    struct tj_regs r##_copy; \
    bpf_probe_read_kernel(&r##_copy.r10, TJ_REGS_LEN, (void *)(kregs) + TJ_REGS_FROM); \
    struct tj_regs *r = &r##_copy
#endif

/* The user stack pointer (only read when a stack or the initial stack is taken). */
static __always_inline u64 tj_user_sp(struct tj_regs *r, void *kregs)
{
#if TJ_RAW_SCHED
    return r->sp;
#else
    u64 sp = 0;
    bpf_probe_read_kernel(&sp, sizeof(sp), kregs + TJ_REGS_SP);
    return sp;
#endif
}

static __always_inline void tj_comm(char *dst)
{
#if TJ_RAW_SCHED
    u64 *c = (u64 *)((char *)bpf_get_current_task_btf() + TJ_OFF_TASK_COMM);
    *(u64 *)dst = c[0];
    *(u64 *)(dst + 8) = c[1];
#else
    bpf_get_current_comm(dst, 16);
#endif
}

struct tj_start {
    u64 ts;
    s64 nr;
    u64 path_retry;          /* the path was not readable at entry (page not present yet) */
};


struct tj_event {            /* 112 bytes; mirrored by loader.EVENT_DTYPE */
    u64 ts;                  /* entry time, or exit time when the entry was not seen */
    s64 duration;            /* -1 when the entry was not seen */
    u32 pid;
    u32 tid;
    s32 nr;
    s32 stack_id;
    u64 args[6];
    s64 ret;
    u64 ip;
    char comm[16];
};

struct tj_batch {            /* mirrored by loader.BATCH_DTYPE; events[0..n) are filled */
    u32 n;
    u32 pad;
    struct tj_event ev[TJ_BATCH];
};

struct tj_path {             /* mirrored by loader.PATH_DTYPE */
    u64 ts;                  /* entry time: joins the event of the same tid */
    u32 tid;
    s32 nr;
    u32 kind;                /* 1 = strings, 2 = sockaddr bytes in p0 (len0 bytes) */
    u32 len0;
    char p0[TJ_PATH_LEN];
    char p1[TJ_PATH_LEN];
};

struct tj_proc {             /* mirrored by loader.PROC_DTYPE */
    u64 ts;
    u32 kind;
    u32 pid;
    u32 tid;
    s32 ppid;
    s32 aux;                 /* exec: old_pid; exit: group_dead; start: bytes of stack copied */
    u32 pad;
    u64 ip;                  /* start: entry ip of the new image */
    u64 sp;                  /* start: initial stack pointer */
    char comm[16];
    char filename[TJ_PATH_LEN];
    u64 stack[TJ_STACK_WORDS];  /* start: argc, argv, envp, auxv as the kernel laid them out */
};

struct tj_site {             /* one slot of the direct-mapped call-site cache */
    s64 nr;
    u64 ip;
    u64 count;
};

/* (syscall, user ip) -> calls seen, in a direct-mapped array: an inlined array access per event
 * instead of a hash lookup. Two sites sharing a slot evict each other, which can only make
 * more stacks be taken, never fewer. */
/* Indexed directly by pid/tid (< pid_max): an array lookup is inlined by the verifier, a hash
 * lookup costs a jhash and a bucket walk on every syscall of every process on the machine. */
BPF_ARRAY(tracked, u8, TJ_PID_MAX);
#if TJ_DURATIONS
BPF_ARRAY(starts, struct tj_start, TJ_PID_MAX);
#else
/* tid -> the file name the exec hook saw, for the path of that tid's successful execve */
struct tj_name {
    char s[TJ_PATH_LEN];
};
BPF_HASH(exec_names, u32, struct tj_name, 4096);
#endif
BPF_ARRAY(live, s64, 1);
BPF_ARRAY(sites, struct tj_site, TJ_SITES);
/* stack id -> the top of the user stack and rbp when that stack was first taken. Debian's libc
 * has no frame pointers: from a wrapper that is not a leaf (open64 keeps its return address at
 * sp+0x78 and a pointer in rbp) the kernel's frame-pointer walk reads garbage. Userspace unwinds
 * the first frames from this copy with the module's .eh_frame CFI (tracer/unwind.py). 512 bytes
 * cover the first frame of 99% of libc's syscall sites and usually a few frame-pointer frames
 * of the caller; 16384 x 528 bytes = 8.3 MiB, preallocated. Indexed by stack id (< TJ_STACKS):
 * an array lookup, the value filled in place (too big for the BPF stack). */
#define TJ_WINDOW 512
struct tj_window {           /* mirrored by loader.Probe.callers() */
    u64 sp;                  /* user sp (0: not filled) */
    u64 bp;                  /* user rbp */
    u32 len;                 /* bytes of stack[] read from sp (the mapping may end sooner) */
    u32 pad;
    u8 stack[TJ_WINDOW];
};
BPF_ARRAY(callers, struct tj_window, TJ_STACKS);

/* The user rbp, read only when a stack is taken (the copy path reads it from the kernel's frame). */
#define TJ_REGS_BP 32
static __always_inline u64 tj_user_bp(struct tj_regs *r, void *kregs)
{
#if TJ_RAW_SCHED
    return r->bp;
#else
    u64 bp = 0;
    bpf_probe_read_kernel(&bp, sizeof(bp), kregs + TJ_REGS_BP);
    return bp;
#endif
}
BPF_STACK_TRACE(stacks, TJ_STACKS);
BPF_PERCPU_ARRAY(counters, u64, 6);
BPF_PERCPU_ARRAY(scratch, struct tj_proc, 1);
BPF_PERCPU_ARRAY(batches, struct tj_batch, 1);
BPF_RINGBUF_OUTPUT(events, TJ_EVENT_PAGES);
BPF_RINGBUF_OUTPUT(paths, TJ_PATH_PAGES);
BPF_RINGBUF_OUTPUT(procs, TJ_PROC_PAGES);

static __always_inline void tj_live_add(s64 delta)
{
    int zero = 0;
    s64 *v = live.lookup(&zero);
    if (v)
        __sync_fetch_and_add(v, delta);
}

static __always_inline void tj_count_n(int which, u64 n)
{
    int k = which;
    u64 *v = counters.lookup(&k);
    if (v)
        *v += n;
}

static __always_inline void tj_count(int which)
{
    tj_count_n(which, 1);
}

/* Which arguments of syscall `nr` are paths (kind 1) or a sockaddr (kind 2, length in arg `b`). */
static __always_inline int tj_path_args(s64 nr, int *a, int *b)
{
    switch (nr) {
TJ_PATH_CASES
    }
    return 0;
}

static __always_inline u64 tj_reg_arg(struct tj_regs *r, int i)
{
    switch (i) {
    case 0: return r->di;
    case 1: return r->si;
    case 2: return r->dx;
    case 3: return r->r10;
    case 4: return r->r8;
    case 5: return r->r9;
    }
    return 0;
}

static __always_inline int tj_is_exec(s64 nr)
{
    return nr == TJ_NR_EXECVE || nr == TJ_NR_EXECVEAT;
}

static __always_inline void tj_emit(void *ctx, struct tj_regs *r, void *kregs, u64 pid_tgid, s64 nr, u64 ts,
                                    s64 dur, s64 ret)
{
    int zero = 0;
    struct tj_batch *b = batches.lookup(&zero);
    if (!b)
        return;
    u32 i = b->n & (TJ_BATCH - 1);
    struct tj_event *e = &b->ev[i];
    e->ts = ts;
    e->duration = dur;
    e->pid = pid_tgid >> 32;
    e->tid = (u32)pid_tgid;
    e->nr = nr;
    e->stack_id = -1;
    e->args[0] = r->di;
    e->args[1] = r->si;
    e->args[2] = r->dx;
    e->args[3] = r->r10;
    e->args[4] = r->r8;
    e->args[5] = r->r9;
    e->ret = ret;
    e->ip = r->ip;
    tj_comm(e->comm);
#if TJ_STACK_K > 0
    u32 slot = ((r->ip * 0x9E3779B97F4A7C15ULL) ^ (u64)nr) >> (64 - TJ_SITES_BITS);
    struct tj_site *sv = sites.lookup(&slot);
    if (sv) {
        if (sv->ip != r->ip || sv->nr != nr) {
            sv->ip = r->ip;
            sv->nr = nr;
            sv->count = 0;
        }
        if (sv->count < TJ_STACK_K) {
            int id = stacks.get_stackid(ctx, BPF_F_USER_STACK);
            if (id >= 0) {
                e->stack_id = id;
                tj_count(CNT_STACKS_TAKEN);
                u32 key = id;
                struct tj_window *w = callers.lookup(&key);
                if (w && !w->sp) {
                    /* the first call with this stack keeps its copy (two CPUs taking the same
                     * new stack at once may mix theirs: the unwinder checks every address) */
                    u64 sp = tj_user_sp(r, kregs);
                    w->bp = tj_user_bp(r, kregs);
                    w->len = 0;
                    if (tj_read_user(w->stack, TJ_WINDOW, (void *)sp) == 0)
                        w->len = TJ_WINDOW;
                    else if (tj_read_user(w->stack, TJ_WINDOW / 2, (void *)sp) == 0)
                        w->len = TJ_WINDOW / 2;
                    else if (tj_read_user(w->stack, TJ_WINDOW / 4, (void *)sp) == 0)
                        w->len = TJ_WINDOW / 4;
                    else if (tj_read_user(w->stack, TJ_WINDOW / 16, (void *)sp) == 0)
                        w->len = TJ_WINDOW / 16;
                    w->sp = sp;
                }
            } else {
                tj_count(CNT_STACK_ERRORS);
            }
        }
        sv->count += 1;
    }
#endif
    if (i + 1 < TJ_BATCH) {
        b->n = i + 1;
        return;
    }
    if (events.ringbuf_output(&b->ev[0], sizeof(struct tj_event) * TJ_BATCH, BPF_RB_NO_WAKEUP) != 0)
        tj_count_n(CNT_EVENTS_LOST, TJ_BATCH);
    b->n = 0;
}

/* Returns 1 when the first string could not be read (a page not faulted in yet: the string
 * literal of a binary that never touched it); the caller then retries at sys_exit, after the
 * kernel itself has read it. With `final` set the record is sent whatever happens. */
static __always_inline int tj_copy_paths(struct tj_regs *r, u32 tid, s64 nr, u64 ts, int final)
{
    int a = -1, b = -1;
    int kind = tj_path_args(nr, &a, &b);
    if (!kind)
        return 0;
    struct tj_path *p = paths.ringbuf_reserve(sizeof(struct tj_path));
    if (!p) {
        tj_count(CNT_PATHS_LOST);
        return 0;
    }
    p->ts = ts;
    p->tid = tid;
    p->nr = nr;
    p->kind = kind;
    p->len0 = 0;
    p->p0[0] = 0;
    p->p1[0] = 0;
    u64 ptr = tj_reg_arg(r, a);
    if (kind == 1) {
        if (ptr && tj_read_user_str(p->p0, sizeof(p->p0), (void *)ptr) < 0 && !final) {
            paths.ringbuf_discard(p, BPF_RB_NO_WAKEUP);
            return 1;
        }
        if (b >= 0) {
            u64 ptr1 = tj_reg_arg(r, b);
            if (ptr1)
                tj_read_user_str(p->p1, sizeof(p->p1), (void *)ptr1);
        }
    } else {
        /* a fixed-size read keeps the verifier simple; the length says how much is the address */
        u64 len = tj_reg_arg(r, b);
        if (len > 128)
            len = 128;
        if (ptr && (tj_read_user(p->p0, 128, (void *)ptr) == 0 ||
                    tj_read_user(p->p0, 16, (void *)ptr) == 0))
            p->len0 = len;
    }
    paths.ringbuf_submit(p, BPF_RB_NO_WAKEUP);
    return 0;
}

#if TJ_ENTER_HOOK
RAW_TRACEPOINT_PROBE(sys_enter)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    u8 *state = tracked.lookup(&tgid);
    if (!state || !*state)
        return 0;
    s64 nr = ctx->args[1];
    if (*state == TJ_ARMED && !tj_is_exec(nr))
        return 0;
    if (nr == TJ_NR_EXIT || nr == TJ_NR_EXIT_GROUP) {
        TJ_USER_REGS(r, ctx->args[0]);
        tj_emit(ctx, r, (void *)ctx->args[0], pid_tgid, nr, bpf_ktime_get_ns(), -1, 0);
        return 0;
    }
#if TJ_DURATIONS
    u32 tid = (u32)pid_tgid;
    u64 ts = bpf_ktime_get_ns();
    struct tj_start *s = starts.lookup(&tid);
    if (!s) {
        tj_count(CNT_STARTS_FULL);
        return 0;
    }
    s->ts = ts;
    s->nr = nr;
    s->path_retry = 0;
#if TJ_PATHS
    int a = -1, b = -1;
    if (tj_path_args(nr, &a, &b)) {
        TJ_USER_REGS(r, ctx->args[0]);
        s->path_retry = tj_copy_paths(r, tid, nr, ts, 0);
    }
#endif
#endif
    return 0;
}
#endif

#if !TJ_DURATIONS
/* A successful execve replaced the memory its path argument was in: the exec hook kept the
 * file name the kernel opened (exec_names[tid]). */
static __always_inline void tj_exec_path(u32 tid, s64 nr, u64 ts)
{
    struct tj_name *name = exec_names.lookup(&tid);
    if (!name)
        return;
    struct tj_path *p = paths.ringbuf_reserve(sizeof(struct tj_path));
    if (!p) {
        tj_count(CNT_PATHS_LOST);
    } else {
        p->ts = ts;
        p->tid = tid;
        p->nr = nr;
        p->kind = 1;
        p->len0 = 0;
        p->p1[0] = 0;
        tj_read_kernel_str(p->p0, sizeof(p->p0), name->s);
        paths.ringbuf_submit(p, BPF_RB_NO_WAKEUP);
    }
    exec_names.delete(&tid);
}
#endif

static __always_inline void tj_emit_start(struct tj_regs *r, u64 sp, u64 pid_tgid, u64 ts)
{
    /* The first instant of a new image: sp points at argc/argv/envp/auxv. Copying that lets the
     * symbolizer find where the kernel put the executable and its interpreter, even for a child
     * that is gone before userspace could read /proc/PID/maps. */
    int zero = 0;
    struct tj_proc *p = scratch.lookup(&zero);
    if (!p)
        return;
    p->ts = ts;
    p->kind = PROC_START;
    p->pid = pid_tgid >> 32;
    p->tid = (u32)pid_tgid;
    p->ppid = -1;
    p->ip = r->ip;
    p->sp = sp;
    p->aux = 0;
    p->filename[0] = 0;
    bpf_get_current_comm(&p->comm, sizeof(p->comm));
    if (tj_read_user(p->stack, sizeof(p->stack), (void *)sp) == 0)
        p->aux = sizeof(p->stack);
    else if (tj_read_user(p->stack, sizeof(p->stack) / 2, (void *)sp) == 0)
        p->aux = sizeof(p->stack) / 2;
    else if (tj_read_user(p->stack, sizeof(p->stack) / 4, (void *)sp) == 0)
        p->aux = sizeof(p->stack) / 4;
    else if (tj_read_user(p->stack, sizeof(p->stack) / 8, (void *)sp) == 0)
        p->aux = sizeof(p->stack) / 8;
    if (procs.ringbuf_output(p, sizeof(*p), 0) != 0)
        tj_count(CNT_PROCS_LOST);
}

RAW_TRACEPOINT_PROBE(sys_exit)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    u8 *state = tracked.lookup(&tgid);
    if (!state || !*state)
        return 0;
    TJ_USER_REGS(r, ctx->args[0]);
    s64 nr = r->orig_ax;
    s64 ret = ctx->args[1];
    if (*state == TJ_ARMED && !tj_is_exec(nr))
        return 0;
    u32 tid = (u32)pid_tgid;
    u64 now = bpf_ktime_get_ns();
    u64 ts = now;
    s64 dur = -1;
#if TJ_DURATIONS
    struct tj_start *s = starts.lookup(&tid);
    if (s && s->ts && (s->nr == nr || nr == -1)) {
        /* nr == -1: rt_sigreturn restored a frame whose orig_ax is -1 */
        ts = s->ts;
        dur = now - s->ts;
        nr = s->nr;
        s->ts = 0;
#if TJ_PATHS
        if (s->path_retry && !tj_is_exec(nr))
            tj_copy_paths(r, tid, nr, ts, 1);
#endif
    }
#else
    /* rt_sigreturn restored a frame whose orig_ax is -1; no other x86_64 call leaves -1 there
     * (short of a deliberate syscall(-1), which this mode then names rt_sigreturn) */
    if (nr == -1)
        nr = TJ_NR_RT_SIGRETURN;
#if TJ_PATHS
    if (tj_is_exec(nr) && ret == 0)
        tj_exec_path(tid, nr, ts);
    else
        tj_copy_paths(r, tid, nr, ts, 1);
#endif
#endif
    tj_emit(ctx, r, (void *)ctx->args[0], pid_tgid, nr, ts, dur, ret);
    if (ret == 0 && tj_is_exec(nr))
        tj_emit_start(r, tj_user_sp(r, (void *)ctx->args[0]), pid_tgid, now);
    return 0;
}

static __always_inline struct tj_proc *tj_proc_begin(int kind, u64 pid_tgid)
{
    int zero = 0;
    struct tj_proc *p = scratch.lookup(&zero);
    if (!p)
        return 0;
    p->ts = bpf_ktime_get_ns();
    p->kind = kind;
    p->pid = pid_tgid >> 32;
    p->tid = (u32)pid_tgid;
    p->ppid = -1;
    p->aux = 0;
    p->ip = 0;
    p->sp = 0;
    p->filename[0] = 0;
    bpf_get_current_comm(&p->comm, sizeof(p->comm));
    return p;
}

/* The small header of tj_proc (no stack copy) is what fork/exec/exit send. */
#define TJ_PROC_SMALL (sizeof(struct tj_proc) - TJ_STACK_WORDS * 8)

/* The sched hooks: what they do is shared; how they get the child pid, its comm, the exec'd
 * file name, old_pid and group_dead differs. With TJ_RAW_SCHED they are raw tracepoints reading
 * task_struct / linux_binprm fields at offsets taken from the kernel's BTF (loader.py): a raw
 * tracepoint detaches without waiting for RCU grace periods, a perf one takes ~50 ms each. */
static __always_inline void tj_on_fork(void *child_task, u32 child, void *child_comm_data)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    u8 *state = tracked.lookup(&tgid);
    if (!state || *state != TJ_TRACKED)
        return;
    u8 *slot = tracked.lookup(&child);
    if (slot) {
        *slot = TJ_TRACKED;
        tj_live_add(1);
    } else {
        tj_count(CNT_STARTS_FULL);
    }
    struct tj_proc *p = tj_proc_begin(PROC_FORK, pid_tgid);
    if (!p)
        return;
    p->pid = child;      /* the new task's tid; the loader tells a thread from a process */
    p->tid = child;
    p->ppid = tgid;
    p->aux = (u32)pid_tgid;  /* the tid that forked */
    tj_read_kernel_str(p->filename, 16, child_comm_data);
    if (procs.ringbuf_output(p, sizeof(*p), 0) != 0)
        tj_count(CNT_PROCS_LOST);
}

static __always_inline void tj_on_exec(u32 old, void *filename)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    u8 *state = tracked.lookup(&tgid);
    if (!state || !*state)
        return;
    if (*state == TJ_ARMED)
        *state = TJ_TRACKED;
    /* a non-leader thread that execs takes over the leader's pid: its old tid is gone */
    if (old != tgid) {
        u8 *gone = tracked.lookup(&old);
        if (gone && *gone) {
            *gone = 0;
            tj_live_add(-1);
        }
    }
    struct tj_proc *p = tj_proc_begin(PROC_EXEC, pid_tgid);
    if (!p)
        return;
    p->aux = old;
    tj_read_kernel_str(p->filename, TJ_PATH_LEN, filename);
#if !TJ_DURATIONS && TJ_PATHS
    u32 tid = (u32)pid_tgid;
    exec_names.update(&tid, (struct tj_name *)p->filename);
#endif
    if (procs.ringbuf_output(p, sizeof(*p), 0) != 0)
        tj_count(CNT_PROCS_LOST);
}

static __always_inline void tj_on_exit(int dead)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    u32 tid = (u32)pid_tgid;
    u8 *state = tracked.lookup(&tgid);
    if (!state || !*state)
        return;
    if (*state == TJ_TRACKED) {
        struct tj_proc *p = tj_proc_begin(PROC_EXIT, pid_tgid);
        if (p) {
            p->aux = dead;
            if (procs.ringbuf_output(p, sizeof(*p), 0) != 0)
                tj_count(CNT_PROCS_LOST);
        }
    }
#if TJ_DURATIONS
    struct tj_start *s = starts.lookup(&tid);
    if (s)
        s->ts = 0;
#endif
    u8 *mine = tracked.lookup(&tid);
    if (tid != tgid && mine && *mine) {
        *mine = 0;
        tj_live_add(-1);
    }
    if (dead && *state) {
        *state = 0;
        tj_live_add(-1);
    }
}

#if TJ_RAW_SCHED
#if !TJ_ENTER_HOOK
/* exit/exit_group never return, so sys_exit never sees them. The exiting task's saved user
 * registers still say which call it was (orig_ax) and its argument; a task killed by a signal
 * has another number there (the call it was in, or -1) and records nothing. */
static __always_inline void tj_exit_call(void *ctx)
{
    u64 pid_tgid = bpf_get_current_pid_tgid();
    u32 tgid = pid_tgid >> 32;
    u8 *state = tracked.lookup(&tgid);
    if (!state || *state != TJ_TRACKED)
        return;
    TJ_USER_REGS(r, 0);
    s64 nr = r->orig_ax;
    if (nr != TJ_NR_EXIT && nr != TJ_NR_EXIT_GROUP)
        return;
    tj_emit(ctx, r, (void *)r, pid_tgid, nr, bpf_ktime_get_ns(), -1, 0);
}
#endif

/* sched_process_fork(struct task_struct *parent, struct task_struct *child) */
RAW_TRACEPOINT_PROBE(sched_process_fork)
{
    void *child = (void *)ctx->args[1];
    u32 pid = 0;
    bpf_probe_read_kernel(&pid, sizeof(pid), child + TJ_OFF_TASK_PID);
    tj_on_fork(child, pid, child + TJ_OFF_TASK_COMM);
    return 0;
}

/* sched_process_exec(struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm) */
RAW_TRACEPOINT_PROBE(sched_process_exec)
{
    void *name = 0;
    bpf_probe_read_kernel(&name, sizeof(name), (void *)ctx->args[2] + TJ_OFF_BPRM_FILENAME);
    tj_on_exec((u32)ctx->args[1], name);
    return 0;
}

/* sched_process_exit(struct task_struct *p, bool group_dead) */
RAW_TRACEPOINT_PROBE(sched_process_exit)
{
#if !TJ_ENTER_HOOK
    tj_exit_call(ctx);
#endif
    tj_on_exit((ctx->args[1] & 0xff) != 0);
    return 0;
}
#else
TRACEPOINT_PROBE(sched, sched_process_fork)
{
    tj_on_fork(0, args->child_pid, (void *)args + (args->data_loc_child_comm & 0xFFFF));
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exec)
{
    tj_on_exec(args->old_pid, (void *)args + (args->data_loc_filename & 0xFFFF));
    return 0;
}

TRACEPOINT_PROBE(sched, sched_process_exit)
{
    tj_on_exit(args->group_dead);
    return 0;
}
#endif
