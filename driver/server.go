package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nftbridge/nftbridge/bridge"
	"github.com/nftbridge/nftbridge/bridge/store"
	"github.com/nftbridge/nftbridge/ports"
)

// Engine is what the driver asks of nftbridge's engine; *bridge.Engine is
// the real one.
type Engine interface {
	CreateNetwork(opts bridge.NetworkOptions) (*store.Network, error)
	RemoveNetwork(ref string, force bool) error
	CreateDriverEndpoint(opts bridge.DriverEndpointOptions) (*store.Endpoint, []string, error)
	RemoveEndpoint(ref string) error
	JoinEndpoint(ref string) (*store.Endpoint, *store.Network, error)
	LeaveEndpoint(ref string) error
	SetEndpointPorts(ref string, specs []ports.Spec) ([]ports.Binding, error)
	DriverEndpoint(ref string) (*store.Endpoint, *store.Network, error)
}

// Request describes one handled request, for the caller's log.
type Request struct {
	Method     string // e.g. "NetworkDriver.Join"
	NetworkID  string
	EndpointID string
	Status     int
	Err        error // nil when the request succeeded
	Duration   time.Duration
	// Notes say what else the request did, e.g. stale endpoints it removed.
	Notes []string
}

// Server answers Docker's plugin requests. It holds no state between
// requests.
type Server struct {
	engine  Engine
	observe func(Request)
}

// Option configures a Server.
type Option func(*Server)

// WithObserver calls fn after every request (to log it).
func WithObserver(fn func(Request)) Option { return func(s *Server) { s.observe = fn } }

// NewServer returns a Server driving engine.
func NewServer(engine Engine, opts ...Option) *Server {
	s := &Server{engine: engine, observe: func(Request) {}}
	for _, opt := range opts {
		opt(s)
	}
	return s
}

// maxBody bounds a request body; Docker's are a few kilobytes.
const maxBody = 1 << 20

// handlerFunc handles one method: it fills in the IDs it read and returns
// the response or an error.
type handlerFunc func(s *Server, body []byte, r *Request) (any, error)

// handlerFor returns the handler of a plugin method.
func handlerFor(method string) (handlerFunc, bool) {
	switch method {
	case "Plugin.Activate":
		return (*Server).activate, true
	case "NetworkDriver.GetCapabilities":
		return (*Server).capabilities, true
	case "NetworkDriver.CreateNetwork":
		return (*Server).createNetwork, true
	case "NetworkDriver.DeleteNetwork":
		return (*Server).deleteNetwork, true
	case "NetworkDriver.CreateEndpoint":
		return (*Server).createEndpoint, true
	case "NetworkDriver.DeleteEndpoint":
		return (*Server).deleteEndpoint, true
	case "NetworkDriver.EndpointOperInfo":
		return (*Server).endpointOperInfo, true
	case "NetworkDriver.Join":
		return (*Server).join, true
	case "NetworkDriver.Leave":
		return (*Server).leave, true
	case "NetworkDriver.ProgramExternalConnectivity":
		return (*Server).programExternalConnectivity, true
	case "NetworkDriver.RevokeExternalConnectivity":
		return (*Server).revokeExternalConnectivity, true
	case "NetworkDriver.DiscoverNew", "NetworkDriver.DiscoverDelete":
		return (*Server).discover, true
	}
	return nil, false
}

// ServeHTTP dispatches POST /<Method> to its handler and writes the JSON
// answer: 200 with the response, or {"Err": ...} with 400 (a malformed or
// unsupported request), 404 (an unknown method or object) or 500.
func (s *Server) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	start := time.Now()
	r := Request{Method: strings.TrimPrefix(req.URL.Path, "/")}
	resp, err := s.handle(w, req, &r)
	r.Status = http.StatusOK
	if err != nil {
		r.Status, r.Err = statusOf(err), err
		resp = errorResponse{Err: err.Error()}
	}
	body, merr := json.Marshal(resp)
	if merr != nil {
		r.Status, r.Err = http.StatusInternalServerError, merr
		body, _ = json.Marshal(errorResponse{Err: "encode response: " + merr.Error()})
	}
	w.Header().Set("Content-Type", ContentType)
	w.WriteHeader(r.Status)
	_, _ = w.Write(append(body, '\n'))
	r.Duration = time.Since(start)
	s.observe(r)
}

func (s *Server) handle(w http.ResponseWriter, req *http.Request, r *Request) (any, error) {
	handler, ok := handlerFor(r.Method)
	if !ok {
		return nil, &requestError{status: http.StatusNotFound, msg: fmt.Sprintf("unknown method %q: this plugin implements NetworkDriver", r.Method)}
	}
	if req.Method != http.MethodPost {
		return nil, badRequest("method %s must be called with POST, not %s", r.Method, req.Method)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxBody))
	if err != nil {
		return nil, badRequest("read %s request: %v", r.Method, err)
	}
	return handler(s, body, r)
}

// requestError is a mistake in the request, answered with its status.
type requestError struct {
	status int
	msg    string
}

func (e *requestError) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &requestError{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

func statusOf(err error) int {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return re.status
	case bridge.IsNotFound(err):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// decode reads a JSON body into v; an empty body is an empty request.
func decode(method string, body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return badRequest("malformed %s request: %v", method, err)
	}
	return nil
}
