// Public surface of the stand-alone hpfeeds library (imports nothing else from src/).
export { Broker, BROKER_DEFAULTS, type BrokerOptions, type ListenAddress } from './broker.js';
export {
  HpfeedsClient,
  HpfeedsServerError,
  type HpfeedsClientEvents,
  type HpfeedsClientOptions,
  type HpfeedsClientTlsOptions,
} from './client.js';
export { parseEndpoint, type Endpoint } from './endpoint.js';
export * as codec from './codec.js';
export {
  FrameDecoder,
  HpfeedsProtocolError,
  encodeAuth,
  encodeAuthFromSecret,
  encodeError,
  encodeInfo,
  encodePublish,
  encodeSubscribe,
  encodeUnsubscribe,
  fitsString8,
  hashSecret,
  type HpfeedsFrame,
} from './codec.js';
export {
  CompositeAuthStore,
  EnvAuthStore,
  JsonFileAuthStore,
  MemoryAuthStore,
  parseAuthKeysJson,
  type JsonFileAuthStoreOptions,
} from './auth-stores.js';
export type { AuthChangeListener, AuthKey, AuthStore, HpfeedsLogger, PeerAddress, PeerResolver } from './types.js';
export { runHpfeedsCli, HPFEEDS_CLI_USAGE, type HpfeedsCliIo } from './cli.js';
