// A session backend: plain node:http plus a WebSocket echo (the `ws` package), written with
// session-backends/backend (in your app: `from 'session-backends/backend'`; here the source, run
// through tsx). It listens where it is told, greets the user the proxy vouches for, checks that the
// page sent the secret_token too, counts requests (the state of this one backend) and saves that
// state when it is terminated.
import { writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import { join } from 'node:path'
import { WebSocketServer } from 'ws'
import { checkSecret, identity, JamsocketBackend, onTerminate } from '../../src/backend/index.js'

const backend = new JamsocketBackend() // PORT, HOST, SESSION_BACKEND_*: a clear error when one is missing
let requests = 0

// Secondary secret validation: the proxy sends the connect response's secret_token as
// x-verified-secret; the page sends it again by another channel (here a header). A leaked
// connection URL alone is then not enough.
const fromThePage = (req) => checkSecret(req, req.headers['x-backend-secret'])

const server = createServer((req, res) => {
  const who = identity(req) // the x-verified-* headers the proxy set (it drops any a client sends)
  if (!who) return res.writeHead(403).end() // not through the proxy: the readiness probe HEAD /
  if (!fromThePage(req)) return res.writeHead(403).end('the secret_token did not come along')
  requests++
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ greeting: `hello ${who.user ?? 'anonymous'}`, auth: who.auth, backend: backend.backendId, key: backend.key, path: req.url, requests }))
})

const wss = new WebSocketServer({ server, verifyClient: ({ req }) => fromThePage(req) })
wss.on('connection', (socket, req) => {
  const who = identity(req)
  socket.on('message', (data) => socket.send(`echo to ${who?.user ?? 'anonymous'} from ${backend.backendId}: ${data}`))
})

// HOST: the local server's loopback address, so that only its proxy reaches this backend.
server.listen(backend.port, backend.host, () => console.log(`backend ${backend.backendId} (key ${backend.key}) listening on ${backend.host ?? '*'}:${backend.port}`))

// A soft terminate sends SIGTERM: save, close, and exit 0 (the backend ends with exit_error false).
onTerminate(async () => {
  wss.close()
  server.close()
  server.closeAllConnections()
  if (backend.dataDir !== null) await writeFile(join(backend.dataDir, 'state.json'), JSON.stringify({ requests }))
  console.log(`SIGTERM: saved ${requests} requests`)
})
