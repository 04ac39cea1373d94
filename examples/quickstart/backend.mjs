// A session backend: plain node:http plus a WebSocket echo (the `ws` package).
// It listens on PORT, counts requests (the state of this one backend), and echoes the identity
// headers the proxy adds: x-verified-username, x-verified-user-data, x-verified-backend, …
import { createServer } from 'node:http'
import { WebSocketServer } from 'ws'

let requests = 0
const id = process.env.SESSION_BACKEND_ID
const key = process.env.SESSION_BACKEND_KEY

// Secondary secret validation: the proxy sends the connect response's secret_token as
// x-verified-secret; the page sends it again by another channel (here a header). A leaked
// connection URL alone is then not enough.
function fromThePage(req) {
  const expected = req.headers['x-verified-secret']
  return typeof expected === 'string' && expected !== '' && req.headers['x-backend-secret'] === expected
}

const server = createServer((req, res) => {
  if (req.method === 'HEAD') return res.end() // the server's readiness probe
  if (!fromThePage(req)) return res.writeHead(403).end('the secret_token did not come along')
  requests++
  const verified = Object.fromEntries(Object.entries(req.headers).filter(([name]) => name.startsWith('x-verified-') && name !== 'x-verified-secret'))
  res.writeHead(200, { 'content-type': 'application/json' })
  res.end(JSON.stringify({ backend: id, key, path: req.url, requests, verified }))
})

const wss = new WebSocketServer({ server, verifyClient: ({ req }) => fromThePage(req) })
wss.on('connection', (socket) => {
  socket.on('message', (data) => socket.send(`echo from ${id}: ${data}`))
})

// HOST is the loopback address the dev server gives: only its proxy (which adds x-verified-*) reaches us.
server.listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1', () => console.log(`backend ${id} (key ${key}) listening on ${process.env.PORT}`))

// Exit cleanly on SIGTERM (a soft terminate): the backend then ends with exit_error false.
process.on('SIGTERM', () => {
  console.log('SIGTERM: saving and exiting')
  wss.close()
  server.close(() => process.exit(0))
  server.closeAllConnections()
})
