// The cache lives in runtime/ since the laptop's local DNS server caches too.
export * from '../../runtime/ttl-cache.ts';
