// @parcel/watcher ships no types for its wrapper, which builds the API around a binding we load ourselves.
declare module '@parcel/watcher/wrapper.js' {
  export function createWrapper(binding: object): typeof import('@parcel/watcher');
}
