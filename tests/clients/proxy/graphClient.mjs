// The Graph client, built the way Microsoft's Node connector samples build it
// (pnp/graph-connectors-samples, nodejs-javascript-markdown/graphClient.js): @azure/identity's
// ClientSecretCredential with its default options, graph-client's TokenCredentialAuthenticationProvider,
// the default middleware chain with a job-following middleware second, and an undici ProxyAgent taken
// from `https_proxy` as the fetch dispatcher. Nothing here names gcemu: the base URL is graph-client's
// default (https://graph.microsoft.com/v1.0) and the authority @azure/identity's default
// (https://login.microsoftonline.com). Pointed at a proxy such as Dev Proxy or gcemu --proxy, the
// proxy decides what answers.

import { ClientSecretCredential } from '@azure/identity';
import { Client, MiddlewareFactory } from '@microsoft/microsoft-graph-client';
import { TokenCredentialAuthenticationProvider } from '@microsoft/microsoft-graph-client/authProviders/azureTokenCredentials/index.js';
import { ProxyAgent } from 'undici';
import { CompleteJobWithDelayMiddleware } from './completeJobWithDelayMiddleware.mjs';

export const graphScopes = ['https://graph.microsoft.com/.default'];

// The application's identity, as the samples' env.js holds it.
export const appInfo = {
  tenantId: process.env.AZURE_TENANT_ID,
  appId: process.env.AZURE_CLIENT_ID,
  secret: process.env.AZURE_CLIENT_SECRET,
};

// graph-client uses the global fetch; `dispatcher` in fetchOptions reaches it untouched, so every Graph
// request goes through the proxy. @azure/identity does not use this: its own pipeline reads
// HTTPS_PROXY / https_proxy (see README.md).
const dispatcher = process.env.https_proxy ? new ProxyAgent(process.env.https_proxy) : undefined;
const fetchOptions = {
  dispatcher,
};

// A Graph client for any TokenCredential (the application's, or a signed-in user's).
export function createClient(credential, { jobPollDelayMs = 500, onLocation } = {}) {
  const authProvider = new TokenCredentialAuthenticationProvider(credential, {
    scopes: graphScopes,
  });
  const middleware = MiddlewareFactory.getDefaultMiddlewareChain(authProvider);
  // second, right after the AuthenticationHandler, so the follow-up requests carry the token
  middleware.splice(1, 0, new CompleteJobWithDelayMiddleware(jobPollDelayMs, onLocation));
  return Client.initWithMiddleware({ middleware, fetchOptions });
}

export const credential = new ClientSecretCredential(appInfo.tenantId, appInfo.appId, appInfo.secret);
