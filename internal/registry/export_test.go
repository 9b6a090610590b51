package registry

import "github.com/golang-jwt/jwt/v5"

// SignKIDOnly signs c with the issuer's key and only a kid header (no x5c), as token servers
// that name their key by its libtrust fingerprint do: the registry must find the key in its
// rootcertbundle by that id, which proves KeyID computes it as distribution does.
func (i *Issuer) SignKIDOnly(c Claims) (string, error) {
	t := jwt.NewWithClaims(jwt.SigningMethodES256, c)
	t.Header["kid"] = i.signer.KeyID
	return t.SignedString(i.signer.key)
}
