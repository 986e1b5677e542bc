// Command bare is the ceiling for bench/server: a plain net/http handler
// that answers every request with a small JSON body, measured the same way
// as Arca.
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8299", "listen address")
	flag.Parse()
	body := map[string]any{"data": map[string]any{"data": map[string]string{"password": "s3cr3t", "username": "app"}}}
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(body)
	})
	log.Fatal(http.ListenAndServe(*addr, nil))
}
