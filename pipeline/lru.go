package pipeline

import "container/list"

// byteLRU is a least-recently-used index bounded by bytes: each value carries a size, and once
// the sizes add up past the budget (0 = unbounded) the least recently used go, each through
// onEvict. Not safe for concurrent use: its owner locks.
type byteLRU[V any] struct {
	budget  int64
	bytes   int64
	index   map[string]*list.Element // key -> element of order holding *lruItem[V]
	order   *list.List               // most recent first
	onEvict func(key string, v V)
}

type lruItem[V any] struct {
	key  string
	v    V
	size int64
}

func newByteLRU[V any](budget int64, onEvict func(string, V)) *byteLRU[V] {
	return &byteLRU[V]{budget: budget, index: map[string]*list.Element{}, order: list.New(), onEvict: onEvict}
}

// get returns key's value and makes it the most recently used.
func (c *byteLRU[V]) get(key string) (V, bool) {
	el, ok := c.index[key]
	if !ok {
		var zero V
		return zero, false
	}
	c.order.MoveToFront(el)
	return el.Value.(*lruItem[V]).v, true
}

// add stores (or replaces) key as the most recently used, then evicts down to the budget.
func (c *byteLRU[V]) add(key string, v V, size int64) {
	c.remove(key)
	c.index[key] = c.order.PushFront(&lruItem[V]{key: key, v: v, size: size})
	c.bytes += size
	for c.budget > 0 && c.bytes > c.budget {
		it := c.order.Back().Value.(*lruItem[V])
		c.remove(it.key)
		if c.onEvict != nil {
			c.onEvict(it.key, it.v)
		}
	}
}

// remove drops key, if present, without calling onEvict.
func (c *byteLRU[V]) remove(key string) {
	if el, ok := c.index[key]; ok {
		c.bytes -= el.Value.(*lruItem[V]).size
		c.order.Remove(el)
		delete(c.index, key)
	}
}

func (c *byteLRU[V]) len() int { return c.order.Len() }
