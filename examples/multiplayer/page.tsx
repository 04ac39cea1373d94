/**
 * The multiplayer example's page: ask the app server for a ConnectResponse, then the upstream
 * README's tree (SessionBackendProvider > SocketIOProvider > a component using the hooks).
 * When the backend ends, the page asks for a new ConnectResponse and remounts.
 */
import { StrictMode, useEffect, useState } from 'react'
import { createRoot } from 'react-dom/client'
import {
  SessionBackendProvider,
  SocketIOProvider,
  useEventListener,
  useReady,
  useSend,
  useStatus,
  type ConnectResponse,
} from '../../src/socketio/index.js' // in your app: 'session-backends/socketio'

interface DocState {
  doc: string
  count: number
  people: string[]
}

function Counter({ backendId, onRestart }: { backendId: string; onRestart: () => void }) {
  const ready = useReady()
  const { status } = useStatus()
  const sendEvent = useSend()
  const [state, setState] = useState<DocState | null>(null)
  // Sent once the backend is ready: the backend lists this page among the people here.
  useEffect(() => {
    if (ready) sendEvent('hello')
  }, [ready, sendEvent])
  useEventListener('state', (next: DocState) => setState(next))
  const end = () => void fetch(`/end?backend=${encodeURIComponent(backendId)}`, { method: 'POST' })
  return (
    <main>
      <p>
        Document <b>{state?.doc ?? '…'}</b>, backend <b id="status">{status}</b>
      </p>
      <p>
        <button id="increment" disabled={!ready} onClick={() => sendEvent('increment', 1)}>
          +1
        </button>{' '}
        count <b id="count">{state?.count ?? '…'}</b>
      </p>
      <p>
        Here: <span id="people">{state?.people.join(', ') ?? ''}</span>
      </p>
      {status === 'terminated' ? (
        <button id="restart" onClick={onRestart}>
          Start a new session
        </button>
      ) : (
        <button id="end" disabled={!ready} onClick={end}>
          End the session
        </button>
      )}
    </main>
  )
}

function App({ doc, user }: { doc: string; user: string }) {
  const [connectResponse, setConnectResponse] = useState<ConnectResponse | null>(null)
  const [attempt, setAttempt] = useState(0)
  // Asks the app server for a ConnectResponse; again (a new backend) after "Start a new session".
  useEffect(() => {
    const controller = new AbortController()
    fetch(`/connect?doc=${encodeURIComponent(doc)}&user=${encodeURIComponent(user)}`, { signal: controller.signal })
      .then((response) => response.json() as Promise<ConnectResponse>)
      .then(setConnectResponse, () => {})
    return () => controller.abort()
  }, [doc, user, attempt])
  if (!connectResponse) return <p>Connecting…</p>
  return (
    // key: a new backend remounts everything below, so no state of the old one lingers.
    <SessionBackendProvider key={connectResponse.backend_id} connectResponse={connectResponse}>
      <SocketIOProvider url={connectResponse.url} options={{ auth: { secret_token: connectResponse.secret_token } }}>
        <Counter backendId={connectResponse.backend_id} onRestart={() => setAttempt((n) => n + 1)} />
      </SocketIOProvider>
    </SessionBackendProvider>
  )
}

const params = new URLSearchParams(location.search)
const doc = params.get('doc') || 'welcome'
const user = params.get('user') || `guest-${Math.floor(Math.random() * 1000)}`
document.title = `${doc} — multiplayer`
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <App doc={doc} user={user} />
  </StrictMode>,
)
