package sim

import (
	"crypto/rand"
	"crypto/subtle"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/cloudkey/cloudkey/internal/identity"
)

// DefaultTokenTTL is how long a token lives unless SetTokenTTL says otherwise.
const DefaultTokenTTL = time.Hour

// serviceIdentityID is the identity id of the service account.
const serviceIdentityID = 50000

// SetTokenTTL sets the lifetime of tokens issued from now on (tests use a
// few seconds to exercise expiry). d <= 0 restores DefaultTokenTTL.
func (s *Sim) SetTokenTTL(d time.Duration) {
	if d <= 0 {
		d = DefaultTokenTTL
	}
	s.tokenTTL.Store(int64(d))
}

// ExpireTokens makes every token issued so far expired, as if their TTL had
// passed: the next request with one gets 401 TokenExpiredError.
func (s *Sim) ExpireTokens() {
	s.tokens.Range(func(k, _ any) bool {
		s.tokens.Store(k, int64(0))
		return true
	})
}

// authenticate checks the Authorization header (the raw token, as Openpath
// clients send it, or "Bearer <token>"), answering 401 and reporting false
// when it is missing, unknown or expired. Tokens live in a sync.Map: they
// are written once and read on every request from many goroutines.
func (s *Sim) authenticate(w http.ResponseWriter, r *http.Request) (token string, ok bool) {
	token = r.Header.Get("Authorization")
	if len(token) > 7 && strings.EqualFold(token[:7], "Bearer ") {
		token = token[7:]
	}
	if token == "" {
		writeError(w, http.StatusUnauthorized, "TokenNotFoundError", "no token in the Authorization header")
		return "", false
	}
	exp, found := s.tokens.Load(token)
	if !found {
		writeError(w, http.StatusUnauthorized, "JsonWebTokenError", "invalid token")
		return "", false
	}
	if time.Now().UnixNano() >= exp.(int64) {
		writeError(w, http.StatusUnauthorized, "TokenExpiredError", "jwt expired")
		return "", false
	}
	return token, true
}

// login serves POST /auth/login. It accepts a JSON body or, as some
// Openpath clients send it, a form-encoded one.
func (s *Sim) login(w http.ResponseWriter, r *http.Request) {
	var creds struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/x-www-form-urlencoded" {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		if err := r.ParseForm(); err != nil {
			badRequest(w, "malformed form body: "+err.Error())
			return
		}
		creds.Email, creds.Password = r.PostForm.Get("email"), r.PostForm.Get("password")
	} else if !decodeBody(w, r, &creds) {
		return
	}
	if creds.Email == "" || creds.Password == "" {
		badRequest(w, "email and password are required")
		return
	}
	sa := s.account
	emailOK := identity.FoldEmail(creds.Email) == identity.FoldEmail(sa.Email)
	passwordOK := subtle.ConstantTimeCompare([]byte(creds.Password), []byte(sa.Password)) == 1
	if !emailOK || !passwordOK {
		writeError(w, http.StatusUnauthorized, "InvalidCredentialsError", "wrong email or password")
		return
	}
	s.issueToken(w)
}

// refreshLogin serves POST /auth/accessTokens/refresh: a new token, and the
// old one stops working.
func (s *Sim) refreshLogin(w http.ResponseWriter, r *http.Request) {
	old, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	s.tokens.Delete(old)
	s.issueToken(w)
}

func (s *Sim) issueToken(w http.ResponseWriter) {
	now := time.Now()
	ttl := time.Duration(s.tokenTTL.Load())
	s.sweepTokens(now, ttl)
	token := rand.Text()
	s.tokens.Store(token, now.Add(ttl).UnixNano())
	var scopeUser *scopeUserJSON
	if s.serviceUser != nil {
		scopeUser = &scopeUserJSON{ID: s.serviceUser.id}
	}
	writeJSON(w, http.StatusCreated, dataEnvelope{
		Data: loginJSON{
			IdentityID: serviceIdentityID,
			Identity:   loginIdentity{ID: serviceIdentityID, Namespace: namespaceJSON{ID: 1}},
			Token:      token,
			TokenScopeList: []tokenScopeJSON{{
				Org:   s.dir.org,
				User:  scopeUser,
				Scope: []string{"o:w", "o:r"},
			}},
			CreatedAt: timestamp(now),
			ExpiresAt: timestamp(now.Add(ttl)),
		},
		Meta: emptyMeta,
	})
}

// sweepTokens forgets expired tokens, at most once per TTL, so that a
// client logging in over and over cannot grow the map without bound.
func (s *Sim) sweepTokens(now time.Time, ttl time.Duration) {
	last := s.lastSweep.Load()
	if now.UnixNano()-last < int64(ttl) || !s.lastSweep.CompareAndSwap(last, now.UnixNano()) {
		return
	}
	s.tokens.Range(func(k, exp any) bool {
		if now.UnixNano() >= exp.(int64) {
			s.tokens.Delete(k)
		}
		return true
	})
}
