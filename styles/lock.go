package styles

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// fileLock is an flock(2) on DIR/styles/.lock. flock locks belong to the open file, so two
// Library values (in one process or two) exclude each other; one Library serialises its own use
// of its file with a mutex.
type fileLock struct{ f *os.File }

func openLock(root string) (*fileLock, error) {
	f, err := os.OpenFile(filepath.Join(root, lockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("styles: open lock: %w", err)
	}
	return &fileLock{f: f}, nil
}

func (l *fileLock) lock(how int) error {
	for {
		err := syscall.Flock(int(l.f.Fd()), how)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EINTR) {
			return fmt.Errorf("styles: lock %s: %w", l.f.Name(), err)
		}
	}
}

func (l *fileLock) exclusive() error { return l.lock(syscall.LOCK_EX) }
func (l *fileLock) shared() error    { return l.lock(syscall.LOCK_SH) }
func (l *fileLock) unlock()          { _ = syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN) }
func (l *fileLock) close() error     { return l.f.Close() }
