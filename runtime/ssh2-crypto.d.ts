// ssh2's crypto module, reached by its path (it is not part of ssh2's typed API): a static import
// so that bundles (the images, the standalone plugins) carry the very module ssh2 itself uses.
declare module 'ssh2/lib/protocol/crypto.js' {
  const crypto: unknown;
  export default crypto;
}
