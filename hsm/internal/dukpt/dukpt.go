// Package dukpt derives DUKPT keys on the host side: TDES DUKPT per ANSI X9.24-1 (2009, Annex A) and
// AES DUKPT per ANSI X9.24-3-2017 with AES-128, AES-192 and AES-256 base derivation keys.
//
// A host derives the key a device used for one transaction from the BDK and the transaction's key
// serial number (KSN). The BDK is fixed, so NewTDESBDK and NewAESBDK prepare its key schedules once;
// the per-transaction keys change with every KSN and are returned as bytes for the caller to schedule.
// Errors wrap cryptoerr.ErrKSN or cryptoerr.ErrKeyLength and never contain key or KSN bytes.
package dukpt
