package proxy

import "sync"

// bufferPool lends httputil.ReverseProxy the buffers it copies response bodies through;
// without one it allocates 32 KiB per request, which the garbage collector then has to clear.
type bufferPool struct{ p *sync.Pool }

func newBufferPool() bufferPool {
	return bufferPool{p: &sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}}
}

func (b bufferPool) Get() []byte  { return *b.p.Get().(*[]byte) }
func (b bufferPool) Put(x []byte) { b.p.Put(&x) }
