"""The node's trio shells that tie net, election, routing and master together."""
