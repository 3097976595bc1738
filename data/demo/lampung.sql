-- A SYNTHETIC dataset (data sintetis): 73 Sentra IKM in Lampung province,
-- 54 of them designated by decree (SK Bupati/Walikota), the figures of the
-- provincial headline of 27 September 2022; and their records: members
-- (in three districts), institutions, obstacles and assistance (at the end). The count per regency/city, the
-- names, decrees, contacts and figures are invented for demonstration;
-- commodities follow what each area is known for (robusta coffee in
-- Lampung Barat and Tanggamus, tapis weaving in Bandar Lampung, banana
-- chips, cassava and tapioca, palm sugar, fish processing on the coast).
-- Sub-district codes and names are real Kemendagri codes (idn-area-data
-- 4.0.1, ODbL). Every name, address and contact says "(data sintetis)".
--
-- Loaded by scripts/demo-data.sh inside one transaction. Idempotent: ids
-- are derived from the row number (md5('demo-lampung-<n>')), and rows
-- already present are left alone. Inserted like any other writer: every
-- CHECK constraint and trigger applies, the change log records each row.

CREATE TEMP TABLE demo_sentra (
    n int, regency text, district text, name text, commodity text, product text,
    kbli text, sector smallint, status smallint, formed date,
    decree text, decree_date date, units int, workers int, female_pct int
) ON COMMIT DROP;

-- status: 1 formed, 2 designated, 3 revitalised, 4 inactive, 5 revoked.
-- units/workers: the 2021 figures; earlier years are derived below.
INSERT INTO demo_sentra VALUES
-- Kabupaten Lampung Selatan (18.01): 6 formed, 4 designated
( 1, '18.01', '18.01.06', 'Sentra IKM Keripik Pisang Kalianda', 'Pisang', 'Keripik pisang', '10794', 1, 2, '2016-04-12', 'B/214/IV.02/HK/2018', '2018-08-20', 22, 61, 78),
( 2, '18.01', '18.01.04', 'Sentra IKM Tahu Tempe Natar', 'Kedelai', 'Tahu dan tempe', '10392', 1, 2, '2015-09-01', 'B/214/IV.02/HK/2018', '2018-08-20', 18, 47, 40),
( 3, '18.01', '18.01.09', 'Sentra IKM Gula Aren Penengahan', 'Nira aren', 'Gula aren cetak', '10722', 1, 2, '2017-02-20', 'B/311/IV.02/HK/2020', '2020-10-05', 14, 33, 45),
( 4, '18.01', '18.01.21', 'Sentra IKM Ikan Asin Bakauheni', 'Ikan laut', 'Ikan asin', '10213', 1, 2, '2017-06-14', 'B/311/IV.02/HK/2020', '2020-10-05', 12, 30, 55),
( 5, '18.01', '18.01.05', 'Sentra IKM Batu Bata Tanjung Bintang', 'Tanah liat', 'Batu bata merah', '23921', 3, 1, '2020-03-03', NULL, NULL, 9, 27, 20),
( 6, '18.01', '18.01.13', 'Sentra IKM Anyaman Bambu Jati Agung', 'Bambu', 'Anyaman bambu', '16292', 4, 1, '2021-07-19', NULL, NULL, 7, 15, 60),
-- Kabupaten Lampung Tengah (18.02): 6 formed, 4 designated
( 7, '18.02', '18.02.07', 'Sentra IKM Tapioka Terbanggi Besar', 'Ubi kayu', 'Tepung tapioka', '10621', 1, 2, '2014-05-10', '180/312/D.a.III.01/HK/2017', '2017-11-14', 11, 64, 25),
( 8, '18.02', '18.02.04', 'Sentra IKM Keripik Singkong Gunung Sugih', 'Ubi kayu', 'Keripik singkong', '10794', 1, 2, '2016-01-25', '180/312/D.a.III.01/HK/2017', '2017-11-14', 16, 42, 70),
( 9, '18.02', '18.02.23', 'Sentra IKM Gula Kelapa Kota Gajah', 'Nira kelapa', 'Gula kelapa', '10722', 1, 2, '2018-03-08', '180/97/D.a.III.01/HK/2021', '2021-04-22', 13, 29, 48),
(10, '18.02', '18.02.01', 'Sentra IKM Mebel Kayu Kalirejo', 'Kayu', 'Mebel kayu', '31001', 5, 2, '2017-08-30', '180/97/D.a.III.01/HK/2021', '2021-04-22', 10, 38, 8),
(11, '18.02', '18.02.08', 'Sentra IKM Pandai Besi Seputih Raman', 'Besi', 'Alat pertanian', '25932', 6, 1, '2019-10-02', NULL, NULL, 6, 17, 5),
(12, '18.02', '18.02.06', 'Sentra IKM Kerupuk Kemplang Punggur', 'Tepung tapioka', 'Kerupuk kemplang', '10794', 1, 1, '2021-02-15', NULL, NULL, 8, 20, 65),
-- Kabupaten Lampung Utara (18.03): 4 formed, 3 designated
(13, '18.03', '18.03.02', 'Sentra IKM Kopi Bubuk Kotabumi', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 2, '2015-11-11', '188.45/421/31-LU/2019', '2019-07-08', 15, 37, 46),
(14, '18.03', '18.03.01', 'Sentra IKM Lada Bukit Kemuning', 'Lada hitam', 'Lada bubuk', '10773', 1, 2, '2016-06-06', '188.45/421/31-LU/2019', '2019-07-08', 9, 21, 52),
(15, '18.03', '18.03.05', 'Sentra IKM Keripik Pisang Abung Timur', 'Pisang', 'Keripik pisang', '10794', 1, 2, '2018-09-17', '188.45/421/31-LU/2019', '2019-07-08', 11, 28, 80),
(16, '18.03', '18.03.06', 'Sentra IKM Gerabah Abung Barat', 'Tanah liat', 'Gerabah', '23931', 4, 1, '2020-11-23', NULL, NULL, 6, 14, 55),
-- Kabupaten Lampung Barat (18.04): 14 formed, 13 designated
(17, '18.04', '18.04.08', 'Sentra IKM Kopi Robusta Sekincau', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 3, '2013-03-18', 'B/102/KPTS/III.01/2018', '2018-02-26', 34, 78, 42),
(18, '18.04', '18.04.04', 'Sentra IKM Kopi Luwak Balik Bukit', 'Kopi robusta', 'Kopi luwak', '10761', 1, 3, '2012-07-09', 'B/102/KPTS/III.01/2018', '2018-02-26', 21, 49, 38),
(19, '18.04', '18.04.07', 'Sentra IKM Kopi Bubuk Way Tenong', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 2, '2014-01-27', 'B/102/KPTS/III.01/2018', '2018-02-26', 26, 58, 44),
(20, '18.04', '18.04.05', 'Sentra IKM Kopi Sumber Jaya', 'Kopi robusta', 'Kopi sangrai', '10761', 1, 2, '2014-05-05', 'B/102/KPTS/III.01/2018', '2018-02-26', 19, 41, 40),
(21, '18.04', '18.04.11', 'Sentra IKM Kopi Sukau', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 2, '2015-10-13', 'B/102/KPTS/III.01/2018', '2018-02-26', 12, 27, 45),
(22, '18.04', '18.04.10', 'Sentra IKM Kopi Batu Brak', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 2, '2016-03-21', 'B/102/KPTS/III.01/2018', '2018-02-26', 14, 30, 43),
(23, '18.04', '18.04.06', 'Sentra IKM Gula Aren Belalau', 'Nira aren', 'Gula aren cetak', '10722', 1, 2, '2016-08-02', 'B/102/KPTS/III.01/2018', '2018-02-26', 10, 24, 50),
(24, '18.04', '18.04.09', 'Sentra IKM Kopi Suoh', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 2, '2017-04-10', 'B/225/KPTS/III.01/2020', '2020-06-15', 11, 25, 41),
(25, '18.04', '18.04.15', 'Sentra IKM Kopi Gedung Surian', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 2, '2017-09-04', 'B/225/KPTS/III.01/2020', '2020-06-15', 13, 29, 44),
(26, '18.04', '18.04.19', 'Sentra IKM Kopi Air Hitam', 'Kopi robusta', 'Kopi sangrai', '10761', 1, 2, '2018-02-12', 'B/225/KPTS/III.01/2020', '2020-06-15', 9, 20, 39),
(27, '18.04', '18.04.18', 'Sentra IKM Kerajinan Bambu Kebun Tebu', 'Bambu', 'Anyaman bambu', '16292', 4, 2, '2018-05-28', 'B/225/KPTS/III.01/2020', '2020-06-15', 8, 19, 63),
(28, '18.04', '18.04.20', 'Sentra IKM Tenun Tapis Pagar Dewa', 'Benang emas', 'Kain tapis', '13121', 2, 2, '2018-11-05', 'B/225/KPTS/III.01/2020', '2020-06-15', 12, 30, 90),
(29, '18.04', '18.04.21', 'Sentra IKM Kopi Batu Ketulis', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 2, '2019-06-24', 'B/174/KPTS/III.01/2022', '2022-05-30', 8, 18, 40),
(30, '18.04', '18.04.22', 'Sentra IKM Ikan Lumbok Seminung', 'Ikan danau', 'Ikan asap', '10213', 1, 1, '2021-09-13', NULL, NULL, 7, 16, 50),
-- Kabupaten Tulang Bawang (18.05): 3 formed, 2 designated
(31, '18.05', '18.05.02', 'Sentra IKM Kerupuk Ikan Menggala', 'Ikan sungai', 'Kerupuk ikan', '10794', 1, 2, '2016-07-18', '188.4/402/KPTS/II.2/2019', '2019-12-09', 12, 31, 72),
(32, '18.05', '18.05.12', 'Sentra IKM Terasi Rawa Jitu', 'Udang rebon', 'Terasi', '10299', 1, 2, '2017-03-27', '188.4/402/KPTS/II.2/2019', '2019-12-09', 9, 22, 64),
(33, '18.05', '18.05.08', 'Sentra IKM Anyaman Purun Banjar Agung', 'Purun', 'Tikar purun', '16292', 4, 1, '2020-08-10', NULL, NULL, 6, 13, 85),
-- Kabupaten Tanggamus (18.06): 6 formed, 5 designated
(34, '18.06', '18.06.20', 'Sentra IKM Kopi Robusta Gisting', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 3, '2013-10-21', 'B.253/30/06/2017', '2017-09-18', 24, 55, 43),
(35, '18.06', '18.06.04', 'Sentra IKM Kopi Pulau Panggung', 'Kopi robusta', 'Kopi sangrai', '10761', 1, 2, '2014-12-01', 'B.253/30/06/2017', '2017-09-18', 17, 38, 41),
(36, '18.06', '18.06.15', 'Sentra IKM Kopi Ulu Belu', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 2, '2016-02-15', 'B.253/30/06/2017', '2017-09-18', 15, 33, 42),
(37, '18.06', '18.06.02', 'Sentra IKM Kakao Talang Padang', 'Kakao', 'Bubuk kakao', '10731', 1, 2, '2017-05-22', 'B.118/30/06/2021', '2021-03-29', 8, 19, 47),
(38, '18.06', '18.06.01', 'Sentra IKM Ikan Asin Kota Agung', 'Ikan laut', 'Ikan asin', '10213', 1, 2, '2018-01-08', 'B.118/30/06/2021', '2021-03-29', 11, 27, 56),
(39, '18.06', '18.06.11', 'Sentra IKM Gula Aren Pugung', 'Nira aren', 'Gula semut', '10722', 1, 1, '2020-06-29', NULL, NULL, 7, 15, 50),
-- Kabupaten Lampung Timur (18.07): 5 formed, 3 designated
(40, '18.07', '18.07.02', 'Sentra IKM Terasi Labuhan Maringgai', 'Udang rebon', 'Terasi', '10299', 1, 2, '2014-08-11', '188.4/516/SK/12-2018', '2018-10-01', 19, 46, 62),
(41, '18.07', '18.07.19', 'Sentra IKM Ikan Asin Pasir Sakti', 'Ikan laut', 'Ikan asin', '10213', 1, 2, '2015-04-20', '188.4/516/SK/12-2018', '2018-10-01', 14, 35, 54),
(42, '18.07', '18.07.08', 'Sentra IKM Keripik Pisang Purbolinggo', 'Pisang', 'Keripik pisang', '10794', 1, 2, '2017-11-27', '188.4/516/SK/12-2018', '2018-10-01', 10, 26, 77),
(43, '18.07', '18.07.06', 'Sentra IKM Mebel Batanghari', 'Kayu', 'Mebel kayu', '31001', 5, 4, '2016-09-05', NULL, NULL, 5, 12, 10),
(44, '18.07', '18.07.07', 'Sentra IKM Batik Way Jepara', 'Kain mori', 'Batik tulis', '13134', 2, 1, '2021-05-17', NULL, NULL, 6, 14, 85),
-- Kabupaten Way Kanan (18.08): 3 formed, 2 designated
(45, '18.08', '18.08.04', 'Sentra IKM Kopi Baradatu', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 2, '2016-10-10', 'B/188/IV.09/WK/2019', '2019-05-13', 10, 23, 44),
(46, '18.08', '18.08.02', 'Sentra IKM Gula Aren Kasui', 'Nira aren', 'Gula aren cetak', '10722', 1, 2, '2017-07-03', 'B/188/IV.09/WK/2019', '2019-05-13', 8, 18, 46),
(47, '18.08', '18.08.01', 'Sentra IKM Kerajinan Rotan Blambangan Umpu', 'Rotan', 'Keranjang rotan', '16292', 4, 1, '2020-02-24', NULL, NULL, 6, 13, 58),
-- Kabupaten Pesawaran (18.09): 4 formed, 3 designated
(48, '18.09', '18.09.01', 'Sentra IKM Kelanting Gedong Tataan', 'Ubi kayu', 'Kelanting', '10794', 1, 2, '2015-03-16', '188.45/277/II.03/2018', '2018-04-23', 16, 38, 74),
(49, '18.09', '18.09.05', 'Sentra IKM Pengolahan Ikan Padang Cermin', 'Ikan laut', 'Ikan asap', '10213', 1, 2, '2016-12-12', '188.45/277/II.03/2018', '2018-04-23', 10, 24, 52),
(50, '18.09', '18.09.10', 'Sentra IKM Rumput Laut Teluk Pandan', 'Rumput laut', 'Dodol rumput laut', '10299', 1, 2, '2017-08-21', '188.45/140/II.03/2021', '2021-07-12', 7, 16, 69),
(51, '18.09', '18.09.07', 'Sentra IKM Kopi Kedondong', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 1, '2021-11-08', NULL, NULL, 6, 14, 43),
-- Kabupaten Pringsewu (18.10): 5 formed, 4 designated
(52, '18.10', '18.10.01', 'Sentra IKM Kerajinan Bambu Pringsewu', 'Bambu', 'Anyaman bambu', '16292', 4, 3, '2012-11-19', 'B/59/KPTS/U.01/2016', '2016-03-07', 28, 64, 66),
(53, '18.10', '18.10.02', 'Sentra IKM Tahu Tempe Gading Rejo', 'Kedelai', 'Tahu dan tempe', '10392', 1, 2, '2014-06-30', 'B/59/KPTS/U.01/2016', '2016-03-07', 20, 48, 38),
(54, '18.10', '18.10.03', 'Sentra IKM Emping Melinjo Ambarawa', 'Melinjo', 'Emping melinjo', '10794', 1, 2, '2016-05-09', 'B/230/KPTS/U.01/2019', '2019-09-02', 13, 31, 81),
(55, '18.10', '18.10.05', 'Sentra IKM Konveksi Pagelaran', 'Kain', 'Pakaian jadi', '14111', 2, 2, '2017-10-16', 'B/230/KPTS/U.01/2019', '2019-09-02', 9, 26, 73),
(56, '18.10', '18.10.06', 'Sentra IKM Pandai Besi Banyumas', 'Besi', 'Alat pertanian', '25932', 6, 5, '2015-02-02', 'B/59/KPTS/U.01/2016', '2016-03-07', 5, 11, 0),
-- Kabupaten Mesuji (18.11): 2 formed, 1 designated
(57, '18.11', '18.11.01', 'Sentra IKM Ikan Asap Mesuji', 'Ikan sungai', 'Ikan asap', '10213', 1, 2, '2017-09-25', '188.45/146/I.02/MSJ/2020', '2020-08-17', 8, 19, 55),
(58, '18.11', '18.11.05', 'Sentra IKM Keripik Singkong Simpang Pematang', 'Ubi kayu', 'Keripik singkong', '10794', 1, 1, '2021-03-22', NULL, NULL, 6, 13, 70),
-- Kabupaten Tulang Bawang Barat (18.12): 3 formed, 2 designated
(59, '18.12', '18.12.01', 'Sentra IKM Tapioka Tulang Bawang Tengah', 'Ubi kayu', 'Tepung tapioka', '10621', 1, 2, '2016-04-04', '188.45/227/III.05/HK/2019', '2019-11-18', 9, 41, 22),
(60, '18.12', '18.12.02', 'Sentra IKM Keripik Pisang Tumijajar', 'Pisang', 'Keripik pisang', '10794', 1, 2, '2017-12-04', '188.45/227/III.05/HK/2019', '2019-11-18', 8, 20, 76),
(61, '18.12', '18.12.06', 'Sentra IKM Mebel Way Kenanga', 'Kayu', 'Mebel kayu', '31001', 5, 1, '2020-10-26', NULL, NULL, 5, 14, 7),
-- Kabupaten Pesisir Barat (18.13): 3 formed, 2 designated
(62, '18.13', '18.13.01', 'Sentra IKM Olahan Ikan Krui', 'Ikan laut', 'Ikan asin dan abon', '10213', 1, 2, '2017-01-16', '188.4/75/KPTS/04-PSB/2020', '2020-02-10', 12, 28, 57),
(63, '18.13', '18.13.07', 'Sentra IKM Kopi Way Krui', 'Kopi robusta', 'Kopi bubuk', '10761', 1, 2, '2017-06-19', '188.4/75/KPTS/04-PSB/2020', '2020-02-10', 9, 21, 42),
(64, '18.13', '18.13.05', 'Sentra IKM Damar Karya Penggawa', 'Getah damar', 'Kerajinan damar', '32909', 4, 1, '2021-08-23', NULL, NULL, 6, 13, 35),
-- Kota Bandar Lampung (18.71): 6 formed, 4 designated
(65, '18.71', '18.71.13', 'Sentra IKM Tapis Lampung Kemiling', 'Benang emas', 'Kain tapis', '13121', 2, 3, '2011-05-23', '516/IV.41/HK/2016', '2016-05-30', 47, 112, 92),
(66, '18.71', '18.71.09', 'Sentra IKM Keripik Pisang Telukbetung Utara', 'Pisang', 'Keripik pisang', '10794', 1, 2, '2012-02-13', '516/IV.41/HK/2016', '2016-05-30', 38, 96, 80),
(67, '18.71', '18.71.04', 'Sentra IKM Ikan Asin Panjang', 'Ikan laut', 'Ikan asin', '10213', 1, 2, '2014-07-07', '227/IV.41/HK/2019', '2019-04-08', 17, 42, 58),
(68, '18.71', '18.71.07', 'Sentra IKM Batik Lampung Telukbetung Selatan', 'Kain mori', 'Batik cap dan tulis', '13134', 2, 2, '2015-10-26', '227/IV.41/HK/2019', '2019-04-08', 12, 30, 83),
(69, '18.71', '18.71.02', 'Sentra IKM Sulam Usus Sukarame', 'Kain satin', 'Sulam usus', '13991', 2, 4, '2016-09-12', NULL, NULL, 5, 10, 95),
(70, '18.71', '18.71.10', 'Sentra IKM Roti dan Kue Rajabasa', 'Tepung terigu', 'Roti dan kue', '10710', 1, 1, '2022-01-17', NULL, NULL, NULL, NULL, 70),
-- Kota Metro (18.72): 3 formed, 2 designated
(71, '18.72', '18.72.01', 'Sentra IKM Batik Metro Pusat', 'Kain mori', 'Batik tulis', '13134', 2, 2, '2016-11-21', '188.4/145/D-3/2020', '2020-07-27', 10, 24, 84),
(72, '18.72', '18.72.02', 'Sentra IKM Tahu Tempe Metro Utara', 'Kedelai', 'Tahu dan tempe', '10392', 1, 2, '2015-08-10', '188.4/145/D-3/2020', '2020-07-27', 14, 33, 39),
(73, '18.72', '18.72.04', 'Sentra IKM Bengkel Las Metro Timur', 'Besi', 'Teralis dan pagar', '25111', 6, 1, '2021-12-06', NULL, NULL, 5, 16, 0);

-- Rough centres of the regencies/cities, for plausible coordinates.
CREATE TEMP TABLE demo_centre (regency text, lat float8, lon float8) ON COMMIT DROP;
INSERT INTO demo_centre VALUES
 ('18.01', -5.72, 105.60), ('18.02', -4.98, 105.22), ('18.03', -4.83, 104.89),
 ('18.04', -5.03, 104.07), ('18.05', -4.47, 105.24), ('18.06', -5.50, 104.62),
 ('18.07', -5.07, 105.55), ('18.08', -4.70, 104.55), ('18.09', -5.39, 105.07),
 ('18.10', -5.36, 104.97), ('18.11', -3.97, 105.45), ('18.12', -4.53, 105.08),
 ('18.13', -5.19, 103.93), ('18.71', -5.43, 105.26), ('18.72', -5.11, 105.31);

-- Capital per sector: investment per business unit (rupiah, excluding land
-- and buildings) and yearly production per rupiah invested.
CREATE TEMP TABLE demo_sector (sector smallint, inv_per_unit bigint, turnover numeric,
                               material_share numeric, unit text) ON COMMIT DROP;
INSERT INTO demo_sector VALUES
 (1, 38000000, 2.4, 0.58, 'kg'), (2, 22000000, 2.1, 0.45, 'lembar'),
 (3, 30000000, 1.8, 0.40, 'buah'), (4, 12000000, 2.6, 0.35, 'buah'),
 (5, 65000000, 1.7, 0.55, 'unit'), (6, 48000000, 1.9, 0.50, 'buah');

INSERT INTO sentra (id, regency_code, district_code, address, latitude, longitude,
                    name, commodity, main_product, kbli_code, kbli_version,
                    sector_group, status, formed_on, decree_number, decree_date,
                    decree_official, contact_name, contact_phone)
SELECT md5('demo-lampung-' || d.n)::uuid, d.regency, d.district,
       'Kecamatan ' || r.name || ' (data sintetis)',
       round((c.lat + ((d.n * 37) % 11 - 5) * 0.01)::numeric, 5),
       round((c.lon + ((d.n * 53) % 11 - 5) * 0.01)::numeric, 5),
       d.name || ' (data sintetis)', d.commodity, d.product, d.kbli, 2020,
       d.sector, d.status, d.formed, d.decree, d.decree_date,
       CASE WHEN d.decree IS NOT NULL THEN
           CASE WHEN d.regency LIKE '18.7_' THEN 'Walikota ' ELSE 'Bupati ' END
           || regexp_replace(g.name, '^(Kabupaten|Kota) ', '') END,
       'Ketua pengurus (data sintetis)',
       '0721-' || lpad((700000 + d.n * 131)::text, 6, '0')
  FROM demo_sentra d
  JOIN demo_centre c ON c.regency = d.regency
  JOIN region g ON g.code = d.regency
  CROSS JOIN LATERAL (VALUES (coalesce(
      (SELECT x.name FROM region x WHERE x.code = d.district), 'kecamatan ' || d.district))) AS r(name)
 ORDER BY d.n
ON CONFLICT (id) DO NOTHING;

-- Figures for 2019-2021 (from the year the sentra was formed): the 2021
-- figures as listed, earlier years a little smaller.
INSERT INTO sentra_figures (sentra_id, year, business_units, workers_male, workers_female,
                            investment, production_value, material_value,
                            capacity, capacity_unit, export_share_bp, export_destinations)
SELECT md5('demo-lampung-' || d.n)::uuid, y.year, u.units,
       u.workers - round(u.workers * d.female_pct / 100.0)::int,
       round(u.workers * d.female_pct / 100.0)::int,
       u.units * s.inv_per_unit, round(u.units * s.inv_per_unit * s.turnover)::bigint,
       round(u.units * s.inv_per_unit * s.turnover * s.material_share)::bigint,
       u.units * 1500, s.unit,
       CASE WHEN d.commodity = 'Kopi robusta' AND d.status = 3 THEN 1500
            WHEN d.product = 'Kain tapis' THEN 500 ELSE 0 END,
       CASE WHEN d.commodity = 'Kopi robusta' AND d.status = 3 THEN '{MY,JP}'::text[]
            WHEN d.product = 'Kain tapis' THEN '{MY}'::text[] ELSE '{}'::text[] END
  FROM demo_sentra d
  JOIN demo_sector s ON s.sector = d.sector
  CROSS JOIN LATERAL (SELECT generate_series(greatest(2019, extract(year FROM d.formed)::int), 2021) AS year) y
  CROSS JOIN LATERAL (SELECT greatest(CASE y.year WHEN 2021 THEN d.units
                                             WHEN 2020 THEN round(d.units * 0.93)::int
                                             ELSE round(d.units * 0.85)::int END, 1) AS units,
                             greatest(CASE y.year WHEN 2021 THEN d.workers
                                             WHEN 2020 THEN round(d.workers * 0.92)::int
                                             ELSE round(d.workers * 0.84)::int END, 1) AS workers) u
 WHERE d.units IS NOT NULL
 ORDER BY d.n, y.year
ON CONFLICT (sentra_id, year) DO NOTHING;

-- ---------------------------------------------------------------- records of the sentra
--
-- Members, institutions, obstacles and assistance (issue 18), SYNTHETIC
-- like everything above: names end in "(data sintetis)", NIBs start with
-- 0000 (no real NIB does), programmes are shaped like the ministry's and the
-- districts' but invented. Ids: md5('demo-lampung-<kind>-<n>-<k>').
--
-- Three districts keep member records (Lampung Barat 18.04, Pringsewu
-- 18.10, Bandar Lampung 18.71): one member per business unit of the
-- sentra's 2021 figures, so that the members a district keeps and the units
-- it reports agree; the others keep none (the statistics add the two up:
-- docs/STATS.md, business_units_effective).

-- Synthetic owners' names: a given name by sex, a place in the list.
CREATE TEMP TABLE demo_owner (sex smallint, k int, name text) ON COMMIT DROP;
INSERT INTO demo_owner
SELECT 2, o, n FROM unnest(ARRAY['Siti', 'Ani', 'Dewi', 'Rina', 'Yuli', 'Sri', 'Wati', 'Nur',
                                 'Lestari', 'Ratna', 'Endang', 'Fitri']) WITH ORDINALITY AS x(n, o)
UNION ALL
SELECT 1, o, n FROM unnest(ARRAY['Budi', 'Agus', 'Joko', 'Heri', 'Rudi', 'Slamet', 'Andi',
                                 'Wayan', 'Made', 'Hendra', 'Iwan', 'Yusuf']) WITH ORDINALITY AS x(n, o);

-- One member per business unit of 2021 (units are those of demo_sentra).
CREATE TEMP TABLE demo_member ON COMMIT DROP AS
SELECT d.n, k, d.regency, d.sector, d.product, d.kbli, d.formed, d.units,
       -- the women-owned share follows the sentra's women workers
       CASE WHEN (k * 100) / d.units < d.female_pct THEN 2 ELSE 1 END::smallint AS sex,
       greatest(1, round(d.workers::numeric / d.units * (0.6 + 0.8 * ((k * 7) % 10) / 9.0)))::int AS workers
  FROM demo_sentra d
 CROSS JOIN LATERAL generate_series(1, d.units) AS k
 WHERE d.regency IN ('18.04', '18.10', '18.71') AND d.units IS NOT NULL;

INSERT INTO member (id, sentra_id, regency_code, name, owner_name, owner_sex, nib, kbli_code,
                    kbli_version, products, workers_male, workers_female, investment,
                    production_value, joined_year, left_year)
SELECT md5('demo-lampung-member-' || m.n || '-' || m.k)::uuid, md5('demo-lampung-' || m.n)::uuid,
       m.regency,
       format('IKM %s %s (data sintetis)', m.product, m.k),
       (SELECT o.name FROM demo_owner o WHERE o.sex = m.sex AND o.k = 1 + (m.n * 5 + m.k) % 12)
           || ' (data sintetis)',
       m.sex,
       -- six in ten have an NIB from OSS
       CASE WHEN (m.n + m.k) % 5 < 3 THEN '0000' || lpad((m.n * 1000 + m.k)::text, 9, '0') END,
       m.kbli, 2020, m.product,
       m.workers - round(m.workers * CASE WHEN m.sex = 2 THEN 0.7 ELSE 0.3 END)::int,
       round(m.workers * CASE WHEN m.sex = 2 THEN 0.7 ELSE 0.3 END)::int,
       -- investment without land and buildings: the sector's per unit, a
       -- few larger members (medium industry: Rp 1 billion or more)
       CASE WHEN m.k % 17 = 0 THEN 1200000000 + m.n * 10000000
            ELSE round(s.inv_per_unit * (0.5 + ((m.k * 13) % 10) / 9.0))::bigint END,
       round(s.inv_per_unit * s.turnover * (0.5 + ((m.k * 13) % 10) / 9.0))::bigint,
       least(2022, greatest(extract(year FROM m.formed)::int, 2008) + m.k % 6),
       -- one in thirteen has left the sentra
       CASE WHEN m.k % 13 = 0 THEN 2021 END
  FROM demo_member m
  JOIN demo_sector s ON s.sector = m.sector
 ORDER BY m.n, m.k
ON CONFLICT (id) DO NOTHING;

-- Institutions: every designated or revitalised sentra and some formed
-- ones. Revitalised sentra run a cooperative with a UPT (DAK-built);
-- textiles and crafts an association; food a KUB; the rest a board of the
-- sentra. Formed sentra: a board in one of two, none in the other.
INSERT INTO institution (sentra_id, regency_code, form, legal_basis, registration_number,
                         board_chair, board_secretary, board_treasurer, facility_name,
                         facility_provides, facility_condition)
SELECT md5('demo-lampung-' || d.n)::uuid, d.regency, f.form,
       CASE WHEN f.form <> 1 THEN format('Akta notaris No. %s/%s (data sintetis)', 10 + d.n,
                                         extract(year FROM coalesce(d.decree_date, d.formed))) ELSE '' END,
       CASE WHEN f.form = 2 THEN format('%s/BH/XII.%s/%s', 100 + d.n, replace(d.regency, '.', ''),
                                        extract(year FROM coalesce(d.decree_date, d.formed)))
            ELSE '' END,
       CASE WHEN f.form <> 1 THEN (SELECT o.name FROM demo_owner o WHERE o.sex = 1 + d.n % 2
                                    AND o.k = 1 + d.n % 12) || ' (data sintetis)' ELSE '' END,
       CASE WHEN f.form <> 1 THEN (SELECT o.name FROM demo_owner o WHERE o.sex = 2
                                    AND o.k = 1 + (d.n + 3) % 12) || ' (data sintetis)' ELSE '' END,
       CASE WHEN f.form <> 1 THEN (SELECT o.name FROM demo_owner o WHERE o.sex = 1
                                    AND o.k = 1 + (d.n + 7) % 12) || ' (data sintetis)' ELSE '' END,
       CASE WHEN d.status = 3 THEN 'UPT ' || d.product || ' (data sintetis)'
            WHEN d.status = 2 AND d.n % 4 = 0 THEN 'Rumah produksi bersama (data sintetis)' ELSE '' END,
       CASE WHEN d.status = 3 THEN 'mesin produksi, pengemasan, ruang pamer'
            WHEN d.status = 2 AND d.n % 4 = 0 THEN 'peralatan produksi bersama' ELSE '' END,
       CASE WHEN d.status = 3 THEN 1 WHEN d.status = 2 AND d.n % 4 = 0 THEN 2 + d.n % 2 END::smallint
  FROM demo_sentra d
 CROSS JOIN LATERAL (SELECT CASE
        WHEN d.status = 3 THEN 2
        WHEN d.status IN (2, 5) AND d.sector IN (2, 4) THEN 4
        WHEN d.status IN (2, 5) AND d.sector = 1 THEN 3
        WHEN d.status IN (2, 5) THEN 5
        WHEN d.n % 2 = 0 THEN 5
        ELSE 1 END::smallint AS form) f
 WHERE d.status IN (2, 3, 5) OR d.n % 3 = 0
 ORDER BY d.n
ON CONFLICT (sentra_id) DO NOTHING;

-- Assistance: designated and revitalised sentra, one to three each, by what
-- their sector needs; revitalised ones got DAK revitalisation. Values in
-- rupiah as such programmes spend them.
CREATE TEMP TABLE demo_aid ON COMMIT DROP AS
SELECT d.n, x.k, d.regency, d.sector, d.status, d.decree_date, x.kind, x.cert, x.provider,
       x.provider_name, x.programme, x.year, x.value
  FROM demo_sentra d
 CROSS JOIN LATERAL (VALUES
       -- what every designated sentra of the sector got first
       (1, CASE d.sector WHEN 1 THEN 3 WHEN 2 THEN 1 WHEN 4 THEN 4 ELSE 2 END,
        CASE d.sector WHEN 1 THEN 1 END,
        CASE d.sector WHEN 1 THEN 1 WHEN 2 THEN 1 ELSE 2 END,
        CASE d.sector WHEN 1 THEN 'Ditjen IKMA' WHEN 2 THEN 'Ditjen IKMA'
                      ELSE 'Dinas Perindustrian dan Perdagangan Provinsi Lampung' END,
        CASE d.sector WHEN 1 THEN 'Fasilitasi sertifikasi halal IKM pangan'
                      WHEN 2 THEN 'Restrukturisasi mesin dan peralatan IKM'
                      WHEN 4 THEN 'Fasilitasi pameran produk kerajinan'
                      ELSE 'Bimbingan teknis peningkatan mutu produk' END,
        least(2022, extract(year FROM d.decree_date)::int + 1),
        CASE d.sector WHEN 1 THEN 12000000 + d.n * 100000 WHEN 2 THEN 185000000 + d.n * 1000000
                      WHEN 4 THEN 45000000 ELSE 60000000 END::bigint),
       -- training from the regency, for one in two
       (2, 2, NULL, 3, 'Dinas Perindustrian kabupaten/kota', 'Pelatihan desain kemasan dan pemasaran digital',
        2021, 35000000::bigint),
       -- DAK revitalisation of revitalised sentra
       (3, 6, NULL, 1, 'Ditjen IKMA (DAK fisik)', 'Revitalisasi sentra IKM melalui DAK',
        extract(year FROM d.decree_date)::int, 1850000000::bigint)
       ) AS x(k, kind, cert, provider, provider_name, programme, year, value)
 WHERE d.status IN (2, 3) AND (x.k = 1 OR (x.k = 2 AND d.n % 2 = 0) OR (x.k = 3 AND d.status = 3));

INSERT INTO assistance (id, sentra_id, regency_code, kind, certification, provider, provider_name,
                        programme, year, value, recipient_member_ids)
SELECT md5('demo-lampung-assistance-' || a.n || '-' || a.k)::uuid, md5('demo-lampung-' || a.n)::uuid,
       a.regency, a.kind, a.cert, a.provider, a.provider_name, a.programme || ' (data sintetis)',
       a.year, a.value,
       -- halal certification went to the first members of a sentra that keeps them
       CASE WHEN a.kind = 3 THEN ARRAY(SELECT md5('demo-lampung-member-' || m.n || '-' || m.k)::uuid
                                         FROM demo_member m WHERE m.n = a.n AND m.k <= 5
                                          AND m.k % 13 <> 0 ORDER BY m.k)
            ELSE '{}' END
  FROM demo_aid a
 ORDER BY a.n, a.k
ON CONFLICT (id) DO NOTHING;

-- Obstacles: one to three per sentra, by sector, reported from 2019 to the
-- meeting; those assistance answered are resolved, others open or being
-- handled.
CREATE TEMP TABLE demo_obstacle ON COMMIT DROP AS
SELECT d.n, x.k, d.regency, x.category, x.description, x.severity,
       (DATE '2019-02-01' + ((d.n * 53 + x.k * 97) % 1300))::date AS reported_on
  FROM demo_sentra d
 CROSS JOIN LATERAL (VALUES
       (1, CASE d.sector WHEN 1 THEN 1 WHEN 2 THEN 1 WHEN 3 THEN 2 WHEN 4 THEN 4 WHEN 5 THEN 1 ELSE 2 END,
        CASE d.sector WHEN 1 THEN 'Harga dan pasokan bahan baku tidak menentu'
                      WHEN 2 THEN 'Benang dan bahan kain sulit didapat dengan harga terjangkau'
                      WHEN 3 THEN 'Alat produksi masih manual'
                      WHEN 4 THEN 'Pemasaran terbatas pada pasar lokal'
                      WHEN 5 THEN 'Pasokan kayu bersertifikat terbatas'
                      ELSE 'Mesin dan peralatan sudah tua' END,
        2 + d.n % 2),
       (2, CASE d.sector WHEN 1 THEN 3 WHEN 2 THEN 4 WHEN 4 THEN 5 ELSE 5 END,
        CASE d.sector WHEN 1 THEN 'Sebagian anggota belum memiliki sertifikat halal dan izin edar'
                      WHEN 2 THEN 'Produk belum dikenal di luar provinsi'
                      ELSE 'Akses permodalan ke perbankan sulit' END,
        1 + d.n % 3),
       (3, CASE WHEN d.n % 8 = 1 THEN 6 ELSE 7 END,
        CASE WHEN d.n % 8 = 1 THEN 'Regenerasi perajin muda kurang'
             ELSE 'Jalan menuju sentra rusak saat musim hujan' END,
        1)) AS x(k, category, description, severity)
 WHERE x.k = 1 OR (x.k = 2 AND d.n % 3 <> 0) OR (x.k = 3 AND d.n % 4 = 1);

INSERT INTO obstacle (id, sentra_id, regency_code, category, description, severity, reported_on,
                      status, resolution, resolved_on, assistance_id)
SELECT md5('demo-lampung-obstacle-' || o.n || '-' || o.k)::uuid, md5('demo-lampung-' || o.n)::uuid,
       o.regency, o.category, o.description || ' (data sintetis)', o.severity,
       -- an obstacle that assistance answered was reported before it
       CASE WHEN a.n IS NOT NULL THEN least(o.reported_on, make_date(a.year, 1, 15)) ELSE o.reported_on END,
       CASE WHEN a.n IS NOT NULL THEN 3 WHEN (o.n + o.k) % 3 = 0 THEN 2 ELSE 1 END,
       CASE WHEN a.n IS NOT NULL
            THEN 'Ditangani melalui ' || lower(a.programme) || ' (data sintetis)' ELSE '' END,
       CASE WHEN a.n IS NOT NULL THEN least(make_date(a.year, 11, 30), DATE '2022-09-26') END,
       CASE WHEN a.n IS NOT NULL THEN md5('demo-lampung-assistance-' || a.n || '-' || a.k)::uuid END
  FROM demo_obstacle o
  -- the assistance that answered the sentra's first obstacle of its kind
  -- (machines: raw materials and technology; certification: quality;
  -- promotion: marketing)
  LEFT JOIN demo_aid a ON a.n = o.n AND a.k = 1 AND o.k = 2 - (o.category IN (1, 2, 4))::int
                       AND ((a.kind = 3 AND o.category = 3) OR (a.kind = 1 AND o.category IN (1, 2))
                            OR (a.kind = 4 AND o.category = 4))
 ORDER BY o.n, o.k
ON CONFLICT (id) DO NOTHING;
