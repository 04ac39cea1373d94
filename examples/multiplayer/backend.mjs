// The session backend of the multiplayer example: one process per document (its key), holding the
// document's state (a shared counter and who is here) and broadcasting every change over socket.io.
// It trusts only what the proxy verified: the user name from x-verified-username, and a socket whose
// handshake carries the connect response's secret_token (matched against x-verified-secret).
import { createServer } from 'node:http'
import { Server } from 'socket.io'

const doc = process.env.SESSION_BACKEND_KEY
let count = 0

const server = createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain' })
  res.end(`multiplayer backend for ${doc}\n`)
})
const io = new Server(server)

io.use((socket, next) => {
  const { headers, auth } = socket.handshake
  const secret = headers['x-verified-secret']
  if (!secret || auth?.secret_token !== secret) return next(new Error('unauthorized'))
  socket.data.user = headers['x-verified-username'] || 'anonymous'
  next()
})

function broadcast() {
  const people = [...io.sockets.sockets.values()].filter((s) => s.data.here).map((s) => s.data.user)
  io.emit('state', { doc, count, people })
}

io.on('connection', (socket) => {
  // The page says hello as soon as it is ready (the upstream README's pattern): then it is "here".
  socket.on('hello', () => {
    socket.data.here = true
    broadcast()
  })
  socket.on('increment', (by) => {
    count += Number.isInteger(by) ? by : 1
    broadcast()
  })
  socket.on('disconnect', broadcast)
})

server.listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1', () => console.log(`document ${doc}: listening`))

process.on('SIGTERM', () => {
  console.log(`document ${doc}: closing at count ${count}`)
  io.close(() => process.exit(0))
  server.closeAllConnections()
})
