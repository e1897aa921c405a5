package s3local

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/spf13/afero"
)

// atomicFs makes every file the backend writes appear whole or not at all, as an object does in
// Amazon S3: gofakes3's file backend writes objects and their metadata in place, so a reader (or
// a restart after kill -9) could find a half-written object, such as a capture manifest cut off
// in the middle of its JSON. A write goes to a file in a staging directory beside the root, on
// the same file system and outside every bucket, and is renamed into place when closed.
type atomicFs struct {
	*afero.BasePathFs
	root    string // the directory served
	staging string

	mu      sync.Mutex
	aborted map[string]bool // paths whose PUT body failed: their staged file is dropped on Close
	puts    map[string]*put // the PUTs in progress, by the paths of their files (begin)
}

// stagingDir is where root's writes are staged: beside root, on the same file system and outside
// every bucket.
func stagingDir(root string) string { return filepath.Clean(root) + ".staging" }

// newAtomicFs serves root, staging writes in stagingDir(root), emptied: what is there is what a
// crash left unfinished, never an object. The start puts back the replaced files a crash kept
// there first (dropUnstored), so it must run before.
func newAtomicFs(root string) (*atomicFs, error) {
	staging := stagingDir(root)
	if err := os.RemoveAll(staging); err != nil {
		return nil, fmt.Errorf("s3local: clear %s: %w", staging, err)
	}
	if err := os.MkdirAll(staging, 0o700); err != nil {
		return nil, fmt.Errorf("s3local: create %s: %w", staging, err)
	}
	base, ok := afero.NewBasePathFs(afero.NewOsFs(), root).(*afero.BasePathFs)
	if !ok {
		return nil, errors.New("s3local: afero.NewBasePathFs is not a *BasePathFs")
	}
	return &atomicFs{BasePathFs: base, root: root, staging: staging, aborted: map[string]bool{}, puts: map[string]*put{}}, nil
}

// Create stages the file (gofakes3 writes objects through Create).
func (a *atomicFs) Create(name string) (afero.File, error) {
	return a.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o666)
}

// OpenFile stages a file opened to be written from the start (afero.WriteFile writes metadata
// this way); anything else, reads included, goes to the file itself.
func (a *atomicFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	if flag&os.O_TRUNC == 0 || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return a.BasePathFs.OpenFile(name, flag, perm)
	}
	final, err := a.RealPath(name)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(a.staging, "put-*")
	if err != nil {
		return nil, err
	}
	return &stagedFile{File: f, fs: a, name: filepath.Clean(name), final: final, perm: perm & 0o644}, nil
}

// abort marks the write of name in progress as failed: its Close drops it (gofakes3 closes a file
// the same way whether its body was read to the end or failed).
func (a *atomicFs) abort(name string) {
	a.mu.Lock()
	a.aborted[filepath.Clean(name)] = true
	a.mu.Unlock()
}

func (a *atomicFs) takeAborted(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	was := a.aborted[name]
	delete(a.aborted, name)
	return was
}

// put is one PUT's files: gofakes3's file backend puts the object in place, then writes its
// metadata, and either may fail after the object is in place (the metadata's write, a sync of
// its directory). A PUT that failed must leave what was there before, as a failed PUT does in
// S3 (an overwrite that fails keeps the previous object): each file a PUT puts in place keeps
// the one it replaced, as a hard link in staging, until the PUT ends (end). The link is named
// after the PUT's marker (keptPath), so that a start after a crash mid-PUT finds and puts back
// what the PUT replaced before it empties staging (dropUnstored).
type put struct {
	id     string            // its marker's name (putStarted)
	roles  map[string]string // the role (roleObject, roleMetadata) of each of its files, by path
	placed []placement       // in the order they were put in place; guarded by atomicFs.mu
}

// The roles of a PUT's files, which name the links to the files they replace (keptPath).
const (
	roleObject   = "object"
	roleMetadata = "metadata"
)

// keptPath is where the PUT id keeps the file its file of role replaced, until it ends.
func keptPath(staging, id, role string) string { return filepath.Join(staging, id+"."+role) }

// replaced reports whether p replaced files (an overwrite), once it ended.
func (p *put) replaced() bool {
	for _, pl := range p.placed {
		if pl.previous != "" {
			return true
		}
	}
	return false
}

type placement struct {
	final    string // the file put in place
	previous string // a link to the file it replaced, "" if there was none
}

// begin starts the PUT id (its marker's name) that writes the files object and metadata (paths
// as the backend opens them).
func (a *atomicFs) begin(id, object, metadata string) *put {
	p := &put{id: id, roles: map[string]string{filepath.Clean(object): roleObject, filepath.Clean(metadata): roleMetadata}}
	a.mu.Lock()
	defer a.mu.Unlock()
	for n := range p.roles {
		a.puts[n] = p
	}
	return p
}

// end ends p: if it failed, what it put in place is taken back, newest first (a file that was
// not there before is removed, a replaced one put back whole, with its own modification time,
// which its metadata records). The returned error says what could not be taken back.
func (a *atomicFs) end(p *put, failed bool) error {
	a.mu.Lock()
	for n := range p.roles {
		delete(a.puts, n)
	}
	placed := p.placed
	a.mu.Unlock()
	var errs []error
	kept := map[string]bool{} // replaced files that could not be put back: their only copy
	for i := len(placed) - 1; failed && i >= 0; i-- {
		pl := placed[i]
		var err error
		if pl.previous != "" {
			if err = os.Rename(pl.previous, pl.final); err != nil {
				kept[pl.previous] = true
				err = fmt.Errorf("%w (the replaced file is kept as %s: the next start puts it back)", err, pl.previous)
			}
		} else if err = os.Remove(pl.final); errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
		if err == nil {
			err = syncDir(filepath.Dir(pl.final))
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("s3local: take back %s of the failed PUT: %w", pl.final, err))
		}
	}
	for _, pl := range placed {
		if pl.previous != "" && !kept[pl.previous] {
			_ = os.Remove(pl.previous) // gone already if it was put back
		}
	}
	return errors.Join(errs...)
}

// place renames tmp to final, the file name of a PUT in progress keeping the one it replaces.
func (a *atomicFs) place(name, tmp, final string) error {
	a.mu.Lock()
	p := a.puts[name]
	a.mu.Unlock()
	if p == nil {
		return os.Rename(tmp, final)
	}
	previous := keptPath(a.staging, p.id, p.roles[name])
	// A file the PUT writes a second time keeps no link: the first one holds what it replaced.
	if err := os.Link(final, previous); errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrExist) {
		previous = ""
	} else if err != nil {
		return fmt.Errorf("keep the file it replaces: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		if previous != "" {
			_ = os.Remove(previous)
		}
		return err
	}
	a.mu.Lock()
	p.placed = append(p.placed, placement{final: final, previous: previous})
	a.mu.Unlock()
	return nil
}

type stagedFile struct {
	*os.File
	fs          *atomicFs
	name, final string
	perm        os.FileMode
	failed      bool
	closed      bool
}

func (f *stagedFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.failed = f.failed || err != nil
	return n, err
}

// Close puts the file in place if every write succeeded and its body did not fail, and drops it
// otherwise, leaving what was there before.
func (f *stagedFile) Close() error {
	if f.closed {
		return nil
	}
	f.closed = true
	tmp := f.File.Name()
	keep := !f.failed && !f.fs.takeAborted(f.name)
	err := f.File.Chmod(f.perm)
	if err == nil && keep {
		err = f.File.Sync() // the rename must not land before the bytes it names
	}
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	if err != nil || !keep {
		_ = os.Remove(tmp)
		return err
	}
	if err := f.fs.place(f.name, tmp, f.final); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("s3local: put %s in place: %w", f.name, err)
	}
	return syncDir(filepath.Dir(f.final))
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// abortOnError reads a PUT's body and, if it fails before its end, marks the object's staged
// write aborted, so the object keeps its previous content as it would in S3.
type abortOnError struct {
	io.Reader
	fs   *atomicFs
	name string
}

func (r abortOnError) Read(p []byte) (int, error) {
	n, err := r.Reader.Read(p)
	if err != nil && err != io.EOF {
		r.fs.abort(r.name)
	}
	return n, err
}
