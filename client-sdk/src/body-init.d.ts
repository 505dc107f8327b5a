// The generated fetch client names the DOM type BodyInit, which @types/node 20 does not declare
// globally (the packages compile without the DOM lib).
type BodyInit = NonNullable<RequestInit['body']>;
