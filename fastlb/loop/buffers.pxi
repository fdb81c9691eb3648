# The buffer pool: a side holds a buffer only while bytes wait in it.
# Interface: buffers.pxd.


# ------------------------------------------------------------------ buffer pool
cdef char *buf_get(Worker w):
    if w.pool_len > 0:
        w.pool_len -= 1
        return w.pool[w.pool_len]
    return <char *>malloc(w.bufsize)


cdef void buf_put(Worker w, char *buf):
    if buf == NULL:
        return
    if w.pool_len == w.pool_cap:
        if w.pool_cap >= 4096:
            free(buf)
            return
        w.pool_cap = w.pool_cap * 2 if w.pool_cap else 64
        w.pool = <char **>realloc(w.pool, w.pool_cap * sizeof(char *))
    w.pool[w.pool_len] = buf
    w.pool_len += 1
