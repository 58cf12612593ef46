package policy

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/util"
)

// dataReads serves an evaluation's reads of the bundle's data (data.gavel.*) from the
// revision's data as one OPA value, which nothing writes to after activation.
//
// OPA reads base documents through a per-evaluation cache (topdown.BaseCache) in front of
// the store: a trie of maps built anew for every evaluation, then filled by a store read
// per path first read (a storage.Path allocated, the value looked up level by level with a
// key term per level). A reference that finds nothing is not cached at all: it reads the
// store every time, and the in-memory store describes a missing array index in an error
// whose message formats the path. The default library tests such references on every
// request (data.gavel.budgets[0] against an empty list), so each cost a few allocations.
//
// As the evaluation's BaseCache, dataReads answers every reference that exists from the
// value directly (ast.Value.Find: no allocation), and its Put is a no-op (there is nothing
// to add). A reference it does not find still goes to the store, as before; readStore
// answers those misses with one shared not-found error. A reference the store resolves
// differently from Find (a string index into an array, a number key into an object) is
// still read from the store, so what a policy reads is unchanged.
type dataReads struct {
	root ast.Value // the store's root, data.system included
	top  ast.Value // what reading all of data returns: the root without data.system
	// keys holds a term for every object key in the data, so that readStore looks a
	// path's keys up without making a term per level; a key it lacks is in no object.
	keys map[string]*ast.Term
}

func newDataReads(ctx context.Context, store storage.Store, txn storage.Transaction) (*dataReads, error) {
	raw, err := store.Read(ctx, txn, storage.RootPath)
	if err != nil {
		return nil, fmt.Errorf("read data: %w", err)
	}
	root, ok := raw.(ast.Value)
	if !ok {
		return nil, fmt.Errorf("read data: the store returned %T, not an OPA value", raw)
	}
	top := root
	if obj, ok := root.(ast.Object); ok && obj.Get(ast.StringTerm(string(ast.SystemDocumentKey))) != nil {
		top, _ = obj.Map(func(k, v *ast.Term) (*ast.Term, *ast.Term, error) {
			if ast.String(ast.SystemDocumentKey).Equal(k.Value) {
				return nil, nil, nil
			}
			return k, v, nil
		})
	}
	keys := map[string]*ast.Term{}
	ast.WalkTerms(root, func(t *ast.Term) bool {
		if obj, ok := t.Value.(ast.Object); ok {
			obj.Foreach(func(k, _ *ast.Term) {
				if s, ok := k.Value.(ast.String); ok {
					keys[string(s)] = k
				}
			})
		}
		return false
	})
	return &dataReads{root: root, top: top, keys: keys}, nil
}

// Get implements topdown.BaseCache.
func (d *dataReads) Get(ref ast.Ref) ast.Value {
	if len(ref) == 0 || !ref[0].Equal(ast.DefaultRootDocument) {
		return nil
	}
	if len(ref) == 1 {
		return d.top
	}
	v, err := d.root.Find(ref[1:])
	if err != nil {
		return nil
	}
	return v
}

// Put implements topdown.BaseCache: every value the store can return is already held.
func (*dataReads) Put(ast.Ref, ast.Value) {}

// errNotFound is readStore's one answer for a path that holds nothing.
var errNotFound = &storage.Error{Code: storage.NotFoundErr, Message: "document missing"}

// readStore is the revision's store for evaluations: reads walk the data value as the
// in-memory store does (a key per object level, a decimal index per array level), without
// a key term or an error allocated per read; everything else is the store's own.
type readStore struct {
	storage.Store
	data *dataReads
}

func (s *readStore) Read(_ context.Context, _ storage.Transaction, path storage.Path) (any, error) {
	node := s.data.root
	for _, key := range path {
		switch curr := node.(type) {
		case ast.Object:
			k := s.data.keys[key]
			if k == nil {
				return nil, errNotFound
			}
			t := curr.Get(k)
			if t == nil {
				return nil, errNotFound
			}
			node = t.Value
		case *ast.Array:
			i, ok := util.Atoi(key)
			if !ok || i < 0 || i >= curr.Len() {
				return nil, errNotFound
			}
			node = curr.Elem(i).Value
		default:
			return nil, errNotFound
		}
	}
	return node, nil
}
