/*
 * loop.c — GLib main loop plus GThreadPool.
 *
 * Posting to the loop goes through one mutex-protected FIFO drained by a
 * single idle source, so callbacks posted from different threads run in the
 * order they were posted (GLib gives no such promise for separate idle sources
 * of equal priority). The loop thread is the thread that created the loop.
 */
#include "loop.h"
#include "core.h"
#include "metrics.h"

typedef struct {
    core_done_fn fn;
    void *data;
} posted;

typedef struct {
    core_work_fn work;
    core_done_fn done;
    void *data;
    core_loop *loop;
} job;

struct core_loop {
    GMainContext *ctx;
    GMainLoop *main;
    GThread *owner;
    GThreadPool *pool;
    int max_queue;
    gint depth;
    gboolean stopping;
    GMutex lock;
    GQueue posts; /* of posted*, guarded by lock */
    gboolean drain_scheduled;
};

static void finish_job(void *p)
{
    job *j = p;
    g_atomic_int_add(&j->loop->depth, -1);
    if (j->done)
        j->done(j->data);
    g_free(j);
}

static void run_job(gpointer p, gpointer user)
{
    job *j = p;
    j->work(j->data);
    core_loop_post(j->loop, finish_job, j);
}
static gboolean drain_posts(gpointer user)
{
    core_loop *loop = user;
    for (;;) {
        g_mutex_lock(&loop->lock);
        posted *p = g_queue_pop_head(&loop->posts);
        if (!p)
            loop->drain_scheduled = FALSE;
        g_mutex_unlock(&loop->lock);
        if (!p)
            break;
        p->fn(p->data);
        g_free(p);
    }
    return G_SOURCE_REMOVE;
}

static double depth_metric(void *user)
{
    return core_loop_work_depth(user);
}

core_loop *core_loop_new(int workers, int max_queue)
{
    core_loop *loop = g_new0(core_loop, 1);
    loop->ctx = g_main_context_ref(g_main_context_default());
    loop->main = g_main_loop_new(loop->ctx, FALSE);
    loop->owner = g_thread_self();
    loop->max_queue = max_queue > 0 ? max_queue : 1024;
    g_mutex_init(&loop->lock);
    g_queue_init(&loop->posts);
    loop->pool = g_thread_pool_new(run_job, loop, CLAMP(workers, 1, 64), FALSE, NULL);
    core_gauge_fn("citycmd_worker_queue_depth", "Jobs queued or running in the worker pool.", "",
                  depth_metric, loop);
    return loop;
}

void core_loop_stop_workers(core_loop *loop)
{
    loop->stopping = TRUE;
    if (loop->pool)
        g_thread_pool_free(loop->pool, FALSE, TRUE);
    loop->pool = NULL;
    drain_posts(loop);
}

void core_loop_drain(core_loop *loop)
{
    drain_posts(loop);
}

void core_loop_free(core_loop *loop)
{
    if (!loop)
        return;
    /* Run what the workers posted so their data is released by its owners. */
    core_loop_stop_workers(loop);
    g_main_loop_unref(loop->main);
    g_main_context_unref(loop->ctx);
    g_mutex_clear(&loop->lock);
    g_free(loop);
}

GMainLoop *core_loop_main(core_loop *loop)
{
    return loop->main;
}

GMainContext *core_loop_context(core_loop *loop)
{
    return loop->ctx;
}

void core_loop_run(core_loop *loop)
{
    g_main_loop_run(loop->main);
}

void core_loop_quit(core_loop *loop)
{
    g_main_loop_quit(loop->main);
}

gboolean core_loop_is_loop_thread(core_loop *loop)
{
    return g_thread_self() == loop->owner;
}

int core_work_submit(core_loop *loop, core_work_fn work, core_done_fn done, void *data)
{
    if (loop->stopping || !loop->pool)
        return CORE_ESHUTDOWN;
    if (g_atomic_int_get(&loop->depth) >= loop->max_queue)
        return CORE_EBUSY;
    job *j = g_new(job, 1);
    *j = (job){work, done, data, loop};
    g_atomic_int_inc(&loop->depth);
    if (!g_thread_pool_push(loop->pool, j, NULL)) {
        g_atomic_int_add(&loop->depth, -1);
        g_free(j);
        return CORE_ESHUTDOWN;
    }
    return 0;
}

void core_loop_post(core_loop *loop, core_done_fn fn, void *data)
{
    posted *p = g_new(posted, 1);
    *p = (posted){fn, data};
    g_mutex_lock(&loop->lock);
    g_queue_push_tail(&loop->posts, p);
    gboolean schedule = !loop->drain_scheduled;
    loop->drain_scheduled = TRUE;
    g_mutex_unlock(&loop->lock);
    if (schedule) {
        GSource *src = g_idle_source_new();
        g_source_set_priority(src, G_PRIORITY_DEFAULT);
        g_source_set_callback(src, drain_posts, loop, NULL);
        g_source_attach(src, loop->ctx);
        g_source_unref(src);
    }
}

int core_loop_work_depth(core_loop *loop)
{
    return g_atomic_int_get(&loop->depth);
}
