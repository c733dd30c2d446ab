/**
 * The wire format livekit-mcp-dispatch's functions and workers share (docs/api.md): the dispatch
 * JWE's protected header and claims, the keyring, the error codes, the address rule and the id
 * rules. Depends on `jose` and node built-ins only; the Python worker mirrors it and is held to it
 * by vectors sealed with it.
 */
export * from './address.js';
export * from './assertion.js';
export * from './claims.js';
export * from './codes.js';
export * from './format.js';
export * from './header.js';
export * from './ids.js';
export * from './keyring.js';
export * from './seal.js';
