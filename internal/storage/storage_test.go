package storage_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/arcasec/arca/internal/storage"
	"github.com/arcasec/arca/internal/storage/storagetest"
)

func TestInmem(t *testing.T) { storagetest.Run(t, storage.NewInmem()) }

func TestBolt(t *testing.T) {
	b, err := storage.New("bolt", map[string]string{"path": filepath.Join(t.TempDir(), "sub", "arca.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	storagetest.Run(t, b)
}

func TestNewRejects(t *testing.T) {
	if _, err := storage.New("consul", nil); err == nil || !strings.Contains(err.Error(), "consul") {
		t.Fatalf("unknown kind: %v", err)
	}
	if _, err := storage.New("bolt", nil); err == nil || !strings.Contains(err.Error(), "path") {
		t.Fatalf("bolt without path: %v", err)
	}
}

// TestBoltCrashDurability kills -9 a child process that writes in a loop
// and prints each key once Put returned; every printed key must survive.
func TestBoltCrashDurability(t *testing.T) {
	if path := os.Getenv("ARCA_BOLT_CRASH_CHILD"); path != "" {
		crashChild(path)
		return
	}
	path := filepath.Join(t.TempDir(), "crash.db")
	for round := 0; round < 3; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestBoltCrashDurability$")
		cmd.Env = append(os.Environ(), "ARCA_BOLT_CRASH_CHILD="+path, fmt.Sprintf("ARCA_BOLT_CRASH_ROUND=%d", round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		var acked []string
		sc := bufio.NewScanner(out)
		deadline := time.Now().Add(300 * time.Millisecond)
		for sc.Scan() {
			if k, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
				acked = append(acked, k)
			}
			if len(acked) > 50 && time.Now().After(deadline) {
				break
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
		if len(acked) == 0 {
			t.Fatal("the child acknowledged no write")
		}
		b, err := storage.New("bolt", map[string]string{"path": path})
		if err != nil {
			t.Fatalf("round %d: reopening after kill -9: %v", round, err)
		}
		for _, k := range acked {
			e, err := b.Get(context.Background(), k)
			if err != nil || e == nil {
				t.Fatalf("round %d: acknowledged key %s lost (%v)", round, k, err)
			}
		}
		b.Close()
	}
}

func crashChild(path string) {
	b, err := storage.New("bolt", map[string]string{"path": path})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	round := os.Getenv("ARCA_BOLT_CRASH_ROUND")
	var mu sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				k := "r" + round + "/g" + strconv.Itoa(g) + "/" + strconv.Itoa(i)
				if err := b.Put(context.Background(), &storage.Entry{Key: k, Value: []byte(k)}); err != nil {
					os.Exit(1)
				}
				mu.Lock()
				fmt.Fprintln(w, "ACK", k)
				w.Flush()
				mu.Unlock()
			}
		}(g)
	}
	wg.Wait()
}

func BenchmarkBoltPut(b *testing.B) {
	for _, conc := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("c%d", conc), func(b *testing.B) {
			st, err := storage.New("bolt", map[string]string{"path": filepath.Join(b.TempDir(), "b.db")})
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			b.SetParallelism(conc)
			var n int64
			var mu sync.Mutex
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.Lock()
					n++
					k := fmt.Sprintf("k/%d", n)
					mu.Unlock()
					st.Put(context.Background(), &storage.Entry{Key: k, Value: make([]byte, 200)})
				}
			})
		})
	}
}
