/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The API's origin for this build (`https://api.example.com`); see docs/frontend.md. */
  readonly VITE_API_BASE_URL?: string;
}
