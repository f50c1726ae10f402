# Build, test, lint and demo targets. Every target works on a fresh clone
# with Go installed; `make test` is what CI runs.

BIN     := bin/cliq
VERSION := $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X cliq/cli.Version=$(VERSION)

.PHONY: build test lint run demo bench clean

build:
	CGO_ENABLED=0 go build -ldflags "$(LDFLAGS)" -o $(BIN) .

test:
	go test -race -count=1 ./...

lint:
	go vet ./...
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "not gofmt-formatted:"; echo "$$out"; exit 1; fi

run: build
	$(BIN) server start

demo: build
	bash testdata/demo.sh $(BIN)

bench:
	go test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin
