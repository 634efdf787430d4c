/** Where the trust check reads its configuration (shared by checkTrust and the signedBy requirement). */
export interface TrustOptions {
  /** Default /etc/containers/policy.json. */
  policyPath?: string;
  /** Default /etc/containers/registries.d. */
  registriesDir?: string;
  /** Accept every image without reading the policy; the caller warns loudly. */
  insecurePolicy?: boolean;
}
