--
-- PostgreSQL database dump
--

\restrict 9eZ8mnl9EcbBIIyeVkXXZDgEVWadk8bA2zlbQaoSgE9oBeuPwrXXfcq7pNDQcho

-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: v1op_operations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.v1op_operations (
    seq bigint NOT NULL,
    name text NOT NULL,
    creator text NOT NULL,
    done boolean NOT NULL,
    seen boolean NOT NULL,
    deleted boolean NOT NULL,
    data bytea NOT NULL
);


--
-- Name: v1op_operations_seq_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.v1op_operations ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.v1op_operations_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: v1op_schema; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.v1op_schema (
    version integer NOT NULL
);


--
-- Data for Name: v1op_operations; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.v1op_operations OVERRIDING SYSTEM VALUE VALUES (1, 'operations/schema1-0', 'users/ada', false, false, false, '\x0a146f7065726174696f6e732f736368656d61312d30120b08c08df6d70610959aef3a1a0975736572732f616461220c08f28df6d70610b1d1f9d6032a0d73657276696365732f6576616c');
INSERT INTO public.v1op_operations OVERRIDING SYSTEM VALUE VALUES (2, 'operations/schema1-1', 'users/bob', true, false, false, '\x0a146f7065726174696f6e732f736368656d61312d31120b08a48ef6d70610959aef3a1a0975736572732f626f62220c08d68ef6d70610b1d1f9d6032a0d73657276696365732f6576616c48015a370a2d747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e54696d657374616d70120608c08df6d706');
INSERT INTO public.v1op_operations OVERRIDING SYSTEM VALUE VALUES (3, 'operations/schema1-2', 'users/ada', true, false, false, '\x0a146f7065726174696f6e732f736368656d61312d32120b08888ff6d70610959aef3a1a0975736572732f616461220c08ba8ff6d70610b1d1f9d6032a0d73657276696365732f6576616c480152090808120571756f7461');
INSERT INTO public.v1op_operations OVERRIDING SYSTEM VALUE VALUES (4, 'operations/schema1-3', 'users/bob', true, false, false, '\x0a146f7065726174696f6e732f736368656d61312d33120b08ec8ff6d70610959aef3a1a0975736572732f626f62220c089e90f6d70610b1d1f9d6032a0d73657276696365732f6576616c480152180801121461626f727465642062792075736572732f616461');
INSERT INTO public.v1op_operations OVERRIDING SYSTEM VALUE VALUES (5, 'operations/schema1-4', 'users/ada', true, true, false, '\x0a146f7065726174696f6e732f736368656d61312d34120b08d090f6d70610959aef3a1a0975736572732f616461220c088291f6d70610b1d1f9d6032a0d73657276696365732f6576616c48015a370a2d747970652e676f6f676c65617069732e636f6d2f676f6f676c652e70726f746f6275662e54696d657374616d70120608c08df6d7066206089691f6d706');
INSERT INTO public.v1op_operations OVERRIDING SYSTEM VALUE VALUES (6, 'operations/schema1-5', 'users/bob', true, false, true, '\x0a146f7065726174696f6e732f736368656d61312d35120b08b491f6d70610959aef3a1a0975736572732f626f62220c08e691f6d70610b1d1f9d6032a0d73657276696365732f6576616c3208088e92f6d70610053a0d73657276696365732f6576616c480152090808120571756f7461');
INSERT INTO public.v1op_operations OVERRIDING SYSTEM VALUE VALUES (7, 'operations/schema1-6', 'users/ada', false, false, true, '\x0a146f7065726174696f6e732f736368656d61312d36120b089892f6d70610959aef3a1a0975736572732f616461220c08ca92f6d70610b1d1f9d6032a0d73657276696365732f6576616c320808f292f6d70610053a0d73657276696365732f6576616c');


--
-- Data for Name: v1op_schema; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.v1op_schema VALUES (1);


--
-- Name: v1op_operations_seq_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.v1op_operations_seq_seq', 7, true);


--
-- Name: v1op_operations v1op_operations_name_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.v1op_operations
    ADD CONSTRAINT v1op_operations_name_key UNIQUE (name);


--
-- Name: v1op_operations v1op_operations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.v1op_operations
    ADD CONSTRAINT v1op_operations_pkey PRIMARY KEY (seq);


--
-- Name: v1op_operations_by_creator; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX v1op_operations_by_creator ON public.v1op_operations USING btree (creator, deleted, done, seen, seq);


--
-- PostgreSQL database dump complete
--

\unrestrict 9eZ8mnl9EcbBIIyeVkXXZDgEVWadk8bA2zlbQaoSgE9oBeuPwrXXfcq7pNDQcho

