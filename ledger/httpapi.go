package ledger

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// auditRequestTimeout bounds one API request (verify of a large ledger takes longest).
const auditRequestTimeout = 5 * time.Minute

// NewAuditHandler serves the read-only auditor API (docs/ledger.md) over q, which should be a
// pool connected as the auditor role. Every path but /healthz needs "Authorization: Bearer <token>".
//
//	GET /v1/trial-balance?at=RFC3339
//	GET /v1/statement?account=merchant_payable:M1&currency=156&limit=100
//	GET /v1/txns?rrn=…   or   ?terminal=…&stan=…
//	GET /v1/settlement/{cycle}          (0: the newest closed cycle)
//	GET /v1/fees?cycle=N
//	GET /v1/verify
//	GET /v1/signatures?since=RFC3339&limit=N   (the e-signatures received, v_signatures)
//	GET /v1/signatures/{entry}                 (one entry's e-signature: the PNG itself)
//	GET /v1/export?table=entries|postings&format=csv|json&cycle=N
func NewAuditHandler(q Querier, token string, log *zap.Logger) (http.Handler, error) {
	if len(token) < 16 {
		return nil, errors.New("audit API: the bearer token must be at least 16 characters")
	}
	if log == nil {
		log = zap.NewNop()
	}
	want := sha256.Sum256([]byte(token))
	// Comparing hashes in constant time hides both the token and its length.
	authorized := func(w http.ResponseWriter, r *http.Request) bool {
		h := r.Header.Get("Authorization")
		got := sha256.Sum256([]byte(strings.TrimPrefix(h, "Bearer ")))
		if strings.HasPrefix(h, "Bearer ") && subtle.ConstantTimeCompare(got[:], want[:]) == 1 {
			return true
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="poswitch-ledger"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "missing or wrong bearer token"})
		return false
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok\n")) })
	api := func(pattern string, h func(ctx context.Context, r *http.Request) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if !authorized(w, r) {
				return
			}
			ctx, cancel := context.WithTimeout(r.Context(), auditRequestTimeout)
			defer cancel()
			v, err := h(ctx, r)
			if err != nil {
				status := http.StatusInternalServerError
				var bad badRequest
				switch {
				case errors.As(err, &bad):
					status = http.StatusBadRequest
				case errors.Is(err, ErrNoSuchCycle):
					status = http.StatusNotFound
				default:
					log.Error("audit API request failed", zap.String("path", r.URL.Path), zap.Error(err))
				}
				writeJSON(w, status, map[string]string{"error": err.Error()})
				return
			}
			if v != nil {
				writeJSON(w, http.StatusOK, v)
			}
		})
	}
	api("GET /v1/trial-balance", func(ctx context.Context, r *http.Request) (any, error) {
		var at time.Time
		if s := r.URL.Query().Get("at"); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return nil, badRequest{"at: want an RFC 3339 time, e.g. 2025-01-31T23:00:00+08:00"}
			}
			at = t
		}
		return TrialBalanceAt(ctx, q, at)
	})
	api("GET /v1/statement", func(ctx context.Context, r *http.Request) (any, error) {
		qs := r.URL.Query()
		if qs.Get("account") == "" {
			return nil, badRequest{"account is required"}
		}
		limit, err := intParam(qs.Get("limit"))
		if err != nil {
			return nil, err
		}
		return Statement(ctx, q, qs.Get("account"), qs.Get("currency"), int(limit))
	})
	api("GET /v1/txns", func(ctx context.Context, r *http.Request) (any, error) {
		qs := r.URL.Query()
		tq := TxnQuery{RRN: qs.Get("rrn"), Terminal: qs.Get("terminal"), STAN: qs.Get("stan")}
		if tq.RRN == "" && (tq.Terminal == "" || tq.STAN == "") {
			return nil, badRequest{"give rrn, or terminal and stan"}
		}
		return Transactions(ctx, q, tq)
	})
	api("GET /v1/settlement/{cycle}", func(ctx context.Context, r *http.Request) (any, error) {
		c, err := intParam(r.PathValue("cycle"))
		if err != nil {
			return nil, err
		}
		return SettlementReport(ctx, q, c)
	})
	api("GET /v1/fees", func(ctx context.Context, r *http.Request) (any, error) {
		c, err := intParam(r.URL.Query().Get("cycle"))
		if err != nil {
			return nil, err
		}
		return FeeReport(ctx, q, c)
	})
	api("GET /v1/verify", func(ctx context.Context, r *http.Request) (any, error) {
		return Verify(ctx, q)
	})
	api("GET /v1/signatures", func(ctx context.Context, r *http.Request) (any, error) {
		var since time.Time
		if v := r.URL.Query().Get("since"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return nil, badRequest{"since: want an RFC 3339 time"}
			}
			since = t
		}
		limit, err := intParam(r.URL.Query().Get("limit"))
		if err != nil {
			return nil, err
		}
		return Signatures(ctx, q, since, int(limit))
	})
	// The e-signature image of an entry, as the PNG the terminal uploaded; its SHA-256 in a header.
	mux.HandleFunc("GET /v1/signatures/{entry}", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		id, err := ParseEntryID(strings.TrimSuffix(r.PathValue("entry"), ".png"))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "entry: want an entry id (UUID)"})
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), auditRequestTimeout)
		defer cancel()
		sig, ok, err := SignatureOf(ctx, q, id)
		switch {
		case err != nil:
			log.Error("audit API request failed", zap.String("path", r.URL.Path), zap.Error(err))
			writeJSON(w, http.StatusInternalServerError, map[string]string{"error": err.Error()})
			return
		case !ok:
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "no signature for entry " + id.String()})
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("X-Poswitch-Signature-SHA256", sig.SHA256)
		w.Header().Set("Content-Length", strconv.Itoa(len(sig.Image)))
		_, _ = w.Write(sig.Image)
	})
	mux.HandleFunc("GET /v1/export", func(w http.ResponseWriter, r *http.Request) {
		if !authorized(w, r) {
			return
		}
		qs := r.URL.Query()
		format := qs.Get("format")
		if format == "" {
			format = "json"
		}
		c, err := intParam(qs.Get("cycle"))
		if err != nil || (format != "csv" && format != "json") || (qs.Get("table") != "" && qs.Get("table") != "entries" && qs.Get("table") != "postings") {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "want table=entries|postings, format=csv|json, cycle=N"})
			return
		}
		if format == "csv" {
			w.Header().Set("Content-Type", "text/csv")
		} else {
			w.Header().Set("Content-Type", "application/x-ndjson")
		}
		ctx, cancel := context.WithTimeout(r.Context(), auditRequestTimeout)
		defer cancel()
		if err := Export(ctx, q, w, qs.Get("table"), format, c); err != nil {
			log.Error("export failed", zap.Error(err))
		}
	})
	return mux, nil
}

type badRequest struct{ msg string }

func (b badRequest) Error() string { return b.msg }

func intParam(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, badRequest{"not a non-negative number: " + strconv.Quote(s)}
	}
	return n, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
